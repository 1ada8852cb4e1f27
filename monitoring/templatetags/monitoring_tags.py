"""Template helpers: figures with units, and the host page's monitoring panel."""

from django import template
from django.conf import settings

from containers.models import Container
from dashboard import access

from .. import series
from ..models import Collection, HostSample

register = template.Library()

_BYTES = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(value):
    value = float(value)
    for unit in _BYTES:
        if abs(value) < 1024 or unit == _BYTES[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


@register.filter
def metric(value, unit):
    """A figure as the stats pages show it ("—" when not measured)."""
    if value is None or value == "":
        return "—"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "bytes":
        return human_bytes(value)
    if unit == "bytes/s":
        return f"{human_bytes(value)}/s"
    return f"{value:g}" if isinstance(value, float) else str(value)


@register.inclusion_tag("monitoring/host_panel.html", takes_context=True)
def host_metrics(context, host):
    """The host page's panel: how it is read, its totals, and its top containers."""
    user = context["request"].user
    visible = access.restrict(user, Container.objects.filter(host=host), "stats")
    totals = HostSample.objects.filter(host=host, period=HostSample.RAW).order_by("-at").first()
    return {
        "host": host,
        "collection": Collection.objects.filter(host=host).first(),
        "can_manage": access.can(user, host, "manage"),
        "modes": Collection.Mode.choices,
        "csrf_token": context.get("csrf_token"),
        "totals": totals,
        "top_cpu": series.top_containers(visible, host, "cpu_percent"),
        "top_mem": series.top_containers(visible, host, "mem_bytes"),
        "interval": settings.METRICS_INTERVAL,
        "ranges": list(series.RANGES),
    }
