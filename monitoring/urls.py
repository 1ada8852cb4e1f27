from django.urls import path

from . import views

app_name = "monitoring"
urlpatterns = [
    path("containers/<int:pk>/stats/", views.container_stats, name="container_stats"),
    path("hosts/<int:pk>/stats/", views.host_stats, name="host_stats"),
    path("hosts/<int:pk>/metrics-mode/", views.host_collection_mode, name="host_collection_mode"),
    path("metrics", views.metrics, name="metrics"),
]
