from django.apps import AppConfig


class StacksConfig(AppConfig):
    name = "stacks"
    verbose_name = "Stacks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import deploy  # noqa: F401  (registers the job handlers)
