"""Fixtures for end-to-end runtime tests: a real Redis and a whole installation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import RedisServer, running
from tests.support.runtime import Installation, installation


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    yield from running(tmp_path / "redis")


@pytest.fixture
def install(tmp_path: Path, redis: RedisServer) -> Iterator[Installation]:
    yield from installation(tmp_path / "install", redis.address)
