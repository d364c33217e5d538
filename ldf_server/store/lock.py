"""One writer per dataset directory: an advisory lock held by the running server.

Two processes appending to the same day files would interleave records; ``ldf-server
import`` takes the same lock, so it refuses to run while a server serves that data
directory (and a server does not start in the middle of an import). The lock is an
``flock`` on ``{data_dir}/{dataset}/.lock``: the kernel releases it when the process
dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

LOCK_NAME = ".lock"

log = logging.getLogger(__name__)


class LockedError(RuntimeError):
    """Another process (a running server, an import) holds the dataset directory."""


class DatasetLock:
    """An exclusive, non-blocking lock on one dataset directory of the durable log."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "DatasetLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(
                f"{self.path.parent} is in use by another process (a running ldf-server or an import); "
                "stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for people: which process holds it
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> "DatasetLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_dataset(root: Path) -> DatasetLock | None:
    """The server's lock on a dataset directory. Held by another process: :class:`LockedError`
    (the server does not start). A directory that cannot be written: ``None`` and a warning;
    the server serves on and readiness reports the log, as for any write that fails."""
    try:
        return DatasetLock(root).acquire()
    except LockedError:
        raise
    except OSError as exc:
        log.warning("cannot lock %s (%s): imports are not kept out while this server runs", root, exc)
        return None
