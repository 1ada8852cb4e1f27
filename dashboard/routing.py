from django.urls import path

from console.consumers import ExecConsumer
from logs.consumers import LogConsumer
from monitoring.consumers import StatsConsumer

from .consumers import JobConsumer

websocket_urlpatterns = [
    path("ws/jobs/<int:pk>/", JobConsumer.as_asgi()),
    path("ws/containers/<int:pk>/exec/", ExecConsumer.as_asgi()),
    path("ws/containers/<int:pk>/logs/", LogConsumer.as_asgi()),
    path("ws/containers/<int:pk>/stats/", StatsConsumer.as_asgi()),
]
