"""Shared fixtures. Every server started here listens on 127.0.0.1 and stops with the test."""

from __future__ import annotations

import pytest

from ldf_server.app import create_app
from tests.support.clock import FakeClock
from tests.support.seeding import make_config, seeded_state

# Mid-day on a weekday, so the simulated garages hold a realistic morning of history.
NOW = "2026-03-31T12:07:30Z"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def config():
    return make_config()


@pytest.fixture
def state(config, clock):
    return seeded_state(config, clock)


@pytest.fixture
async def client(aiohttp_client, config, state):
    """A test client of a server on a seeded store (feeds not polling: the test drives time)."""
    return await aiohttp_client(create_app(config, state=state, run_feeds=False))
