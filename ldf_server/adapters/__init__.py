"""Adapters turn upstream feed payloads into domain records (:mod:`ldf_server.records`).

Each adapter has two halves: ``fetch`` (transport only) and ``parse`` (pure, tested on
recorded payloads). The poller in :mod:`.poller` runs them on a schedule.
"""
