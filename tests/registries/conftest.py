"""Registry fixtures: a Registry row for the session's real registry, granted to alpha."""

import pytest

from dashboard.audit import Actor
from registries import services


@pytest.fixture
def registry(cast, registry_server):
    """The real test registry as a dashboard Registry, granted to team alpha."""
    return services.save_registry(
        Actor.system(),
        name="test-registry",
        url=registry_server.url,
        username=registry_server.username,
        password=registry_server.password,
        teams=[cast.alpha],
    )
