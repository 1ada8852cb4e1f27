from django.urls import include, path, register_converter

from . import views
from .services import ACTIONS


class ActionConverter:
    regex = "|".join(ACTIONS)

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(ActionConverter, "action")

app_name = "containers"
urlpatterns = [
    path("", views.container_list, name="list"),
    path("new/", views.container_new, name="new"),
    path("bulk/", views.container_bulk, name="bulk"),
    path("<int:pk>/", views.container_detail, name="detail"),
    path("<int:pk>/logs/", include("logs.urls")),
    path("<int:pk>/assign/", views.container_assign, name="assign"),
    path("<int:pk>/env/reveal/", views.container_reveal_env, name="reveal_env"),
    path("<int:pk>/<action:action>/", views.container_action, name="action"),
    path("", include("console.urls")),
]
