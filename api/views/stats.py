"""A container's stats series: GET /api/v1/containers/<pk>/stats/?range=1h|24h|7d|30d.

The same series the stats page draws (monitoring.series), behind the same "stats"
action of the gate.
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response

from containers.models import Container
from monitoring import series

from ..serializers import StatsSeriesSerializer
from .base import ApiView


class ContainerStats(ApiView, generics.GenericAPIView):
    queryset = Container.objects.select_related("host", "team")
    serializer_class = StatsSeriesSerializer
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter("range", str, enum=list(series.RANGES), default=series.DEFAULT_RANGE)
        ]
    )
    def get(self, request, pk):
        """Timestamps (`t`, Unix seconds) and one list per metric, aligned with them."""
        container = self.get_object("stats")
        range_name = request.query_params.get("range") or series.DEFAULT_RANGE
        if range_name not in series.RANGES:
            raise serializers.ValidationError(
                {"range": [f"range must be one of {', '.join(series.RANGES)}"]}
            )
        return Response(series.container_series(container, range_name))
