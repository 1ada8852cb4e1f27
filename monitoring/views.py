"""The stats page, its JSON series, a host's totals, and /metrics for Prometheus."""

import hmac

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from containers.models import Container
from dashboard import access
from dashboard.audit import Actor
from dashboard.models import Host

from . import prometheus, series, services
from .models import Collection, Sample
from .queries import METRICS

CHARTS = (
    # (title, unit, [(metric, label)])
    ("CPU", "%", [("cpu_percent", "CPU % of one core"), ("cpu_throttled_percent", "throttled %")]),
    (
        "Memory",
        "bytes",
        [("mem_bytes", "working set"), ("mem_usage_bytes", "usage"), ("mem_limit_bytes", "limit")],
    ),
    ("Network", "bytes/s", [("net_rx_bps", "received"), ("net_tx_bps", "sent")]),
    ("Block I/O", "bytes/s", [("blk_read_bps", "read"), ("blk_write_bps", "written")]),
    ("Processes", "", [("pids", "pids")]),
)


def _range(request):
    """The `range` parameter: one of series.RANGES; anything else is the default."""
    value = request.GET.get("range", "")
    return value if value in series.RANGES else series.DEFAULT_RANGE


@require_GET
def container_stats(request, pk):
    container = access.get_or_404(
        request.user, Container.objects.select_related("host", "team"), "stats", pk=pk
    )
    range_name = _range(request)
    if request.GET.get("format") == "json":
        if request.GET.get("range", series.DEFAULT_RANGE) not in series.RANGES:
            return JsonResponse(
                {"error": f"range must be one of {', '.join(series.RANGES)}"}, status=400
            )
        return JsonResponse(series.container_series(container, range_name))
    latest = Sample.objects.filter(container=container).order_by("-at").values().first()
    collection = Collection.objects.filter(host=container.host).first()
    return render(
        request,
        "monitoring/stats.html",
        {
            "c": container,
            "range": range_name,
            "ranges": list(series.RANGES),
            "charts": CHARTS,
            "metrics": METRICS,
            "latest": latest,
            "collection": collection,
            "interval": settings.METRICS_INTERVAL,
        },
    )


@require_POST
def host_collection_mode(request, pk):
    """Dashboard admins: read this host through cgroup files when possible, or the API."""
    host = access.get_or_404(request.user, Host.objects.all(), "manage", pk=pk)
    try:
        services.set_collection_mode(
            Actor.from_request(request), host, request.POST.get("mode", "")
        )
    except services.BadMode as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    messages.success(
        request, f"Metrics of {host.name}: the method is decided again at the next sweep."
    )
    return redirect("host_detail", pk=host.pk)


@require_GET
def host_stats(request, pk):
    """A host's totals over a range, for the host page's chart (JSON)."""
    host = access.get_or_404(request.user, Host.objects.all(), pk=pk)
    if request.GET.get("range", series.DEFAULT_RANGE) not in series.RANGES:
        return JsonResponse(
            {"error": f"range must be one of {', '.join(series.RANGES)}"}, status=400
        )
    return JsonResponse(series.host_series(host, _range(request)))


def _bearer(request):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


@login_not_required
@require_GET
def metrics(request):
    """Prometheus text format, for `Authorization: Bearer <METRICS_TOKEN>` or an admin."""
    token = _bearer(request)
    if token is not None:
        expected = settings.METRICS_TOKEN
        # No token configured: every bearer is refused (an empty one must not match).
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            return _unauthorized("invalid token")
    elif not request.user.is_authenticated:
        return _unauthorized("a bearer token or a dashboard admin's session is needed")
    elif not access.is_admin(request.user):
        return HttpResponse(
            "Forbidden: /metrics is for dashboard admins and the metrics token.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    body = generate_latest(prometheus.registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def _unauthorized(reason):
    response = HttpResponse(
        f"Unauthorized: {reason}.\n", status=401, content_type="text/plain; charset=utf-8"
    )
    response["WWW-Authenticate"] = 'Bearer realm="dockyard-metrics"'
    return response
