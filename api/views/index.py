"""GET /api/v1/ — where everything is."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from .base import ApiView


class IndexSerializer(serializers.Serializer):
    endpoints = serializers.DictField(child=serializers.CharField())


class Index(ApiView):
    pagination_class = None

    @extend_schema(responses=IndexSerializer, tags=["about"])
    def get(self, request):
        names = [
            "me",
            "hosts",
            "containers",
            "volumes",
            "networks",
            "images",
            "registries",
            "alert_rules",
            "silences",
            "alerts",
            "audit",
            "schema",
            "docs",
        ]
        return Response({"endpoints": {n: reverse(f"api:{n}") for n in names}})
