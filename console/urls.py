"""Included from containers/urls.py under /containers/."""

from django.urls import path

from . import views

urlpatterns = [
    path("<int:pk>/console/", views.console_page, name="console"),
    path("console/replay/<int:entry_id>/", views.replay_page, name="console_replay"),
    path("console/replay/<int:entry_id>/cast/", views.recording, name="console_recording"),
]
