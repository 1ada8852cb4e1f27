"""Monitoring fixtures: the collector's kept readings are reset around every test."""

import pytest

from monitoring import collector
from tests.containers.conftest import second_engine, second_host  # noqa: F401

BURN = ["sh", "-c", "while :; do :; done"]
# 48 MiB in a tmpfs: shared memory stays in the working set (it is not file cache).
HOLD = [
    "sh",
    "-c",
    "head -c 50331648 /dev/zero > /data/x; trap 'exit 0' TERM; while :; do sleep 1; done",
]


@pytest.fixture(autouse=True)
def fresh_collector():
    collector.forget()
    yield
    collector.forget()
