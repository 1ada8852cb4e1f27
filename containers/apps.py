from django.apps import AppConfig


class ContainersConfig(AppConfig):
    name = "containers"

    def ready(self):
        # Registers the container job handlers in every process (web and worker).
        from . import services  # noqa: F401
