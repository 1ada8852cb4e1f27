from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "images"

    def ready(self):
        # Registers the image job handlers in every process (web and worker).
        from . import services  # noqa: F401
