"""GET /api/v1/jobs/<id>/ — a job's status, message, output and progress; ?wait=N
long-polls until the job is done or N seconds (at most 60) have passed."""

import time

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from dashboard.models import Job

from ..serializers import JobSerializer
from .base import ApiView

MAX_WAIT = 60
POLL_EVERY = 0.25
DONE = [Job.Status.SUCCEEDED, Job.Status.FAILED]


def wait_seconds(params):
    raw = params.get("wait")
    if raw is None or raw == "":
        return 0
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4):
        raise exceptions.ValidationError({"wait": [f"A whole number of seconds, 0 to {MAX_WAIT}."]})
    return min(int(raw), MAX_WAIT)


class JobDetail(ApiView):
    queryset = Job.objects.select_related("host", "container")
    serializer_class = JobSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "wait", int, description=f"Wait up to this many seconds (≤ {MAX_WAIT}) for the end"
            )
        ]
    )
    def get(self, request, pk):
        """Your job (a dashboard admin: any job). `done` is true once it succeeded or failed."""
        wait = wait_seconds(request.query_params)
        job = self.get_object()
        deadline = time.monotonic() + wait
        # Polls one indexed row: cheap, and the worker writes the end in one update.
        while not job.done and time.monotonic() < deadline:
            time.sleep(min(POLL_EVERY, max(0.0, deadline - time.monotonic())))
            if Job.objects.filter(pk=job.pk, status__in=DONE).exists():
                job = self.get_object()
        return Response(self.get_serializer(job).data)
