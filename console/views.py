"""Console pages: the live console (operators) and the replay of a recording (dashboard admins)."""

from csp.decorators import csp_update
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from containers.models import Container
from dashboard import access

from . import policy
from .models import ConsoleSession

# xterm.js styles the cells it draws with <style> elements it creates: these two
# pages allow inline styles (scripts stay 'self' only).
xterm_styles = csp_update({"style-src": ["'unsafe-inline'"]})


@xterm_styles
def console_page(request, pk):
    container = access.get_or_404(
        request.user, Container.objects.select_related("host", "team"), "exec", pk=pk
    )
    return render(
        request,
        "console/console.html",
        {
            "container": container,
            "default_command": policy.DEFAULT_COMMAND,
            "is_admin": access.is_admin(request.user),
        },
    )


def _session_for_entry(request, entry_id):
    # Recordings may hold secrets: dashboard admins only; everybody else sees nothing.
    if not access.is_admin(request.user):
        raise Http404("No console session found")
    session = ConsoleSession.objects.filter(audit_entry_id=entry_id).first()
    if session is None:
        raise Http404("No console session found")
    return session


@never_cache
@xterm_styles
def replay_page(request, entry_id):
    session = _session_for_entry(request, entry_id)
    return render(request, "console/replay.html", {"session": session})


@never_cache
def recording(request, entry_id):
    session = _session_for_entry(request, entry_id)
    response = HttpResponse(session.cast(), content_type="application/x-asciicast")
    response["Content-Disposition"] = f'inline; filename="console-{entry_id}.cast"'
    return response
