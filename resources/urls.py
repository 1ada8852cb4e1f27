from django.urls import path, register_converter

from . import views


class KindConverter:
    regex = "volume|network"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(KindConverter, "kind")

app_name = "resources"
urlpatterns = [
    path("volumes/", views.volume_list, name="volume_list"),
    path("networks/", views.network_list, name="network_list"),
    path("<kind:kind>s/new/", views.create, name="create"),
    path("<kind:kind>s/<int:pk>/remove/", views.remove, name="remove"),
    path("<kind:kind>s/<int:pk>/assign/", views.assign, name="assign"),
]
