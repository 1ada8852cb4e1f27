from django.apps import AppConfig


class RegistriesConfig(AppConfig):
    name = "registries"
    verbose_name = "Registries"

    def ready(self):
        # Registers the registry job handlers in every process (web and worker).
        from . import jobs  # noqa: F401
