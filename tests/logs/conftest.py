"""The second engine's fixtures, for the outage tests (they stop and start it)."""

from tests.containers.conftest import second_engine, second_host  # noqa: F401
