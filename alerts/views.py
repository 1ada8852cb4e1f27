"""Monitoring pages: overview, rules, alerts (with each email's delivery state), silences.

Every object is read through the gate: rules and silences by `access.restrict` on
their team, alerts by what the user may see of their container or host.
"""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard import access
from dashboard.audit import Actor

from . import services
from .forms import RuleForm, SilenceForm
from .models import Alert, AlertRule, Notification, Silence


def _rules(user):
    return access.restrict(user, AlertRule.objects.all(), "view").select_related(
        "team", "host", "container"
    )


def _can_write(user):
    return access.is_admin(user) or services.writable_teams(user).exists()


def _alerts(user):
    return services.visible_alerts(
        user, Alert.objects.select_related("rule_team")
    ).prefetch_related(
        Prefetch("notifications", queryset=Notification.objects.order_by("created_at", "pk"))
    )


def overview(request):
    user = request.user
    alerts = _alerts(user)
    return render(
        request,
        "alerts/overview.html",
        {
            "firing": alerts.filter(resolved_at__isnull=True)[:50],
            "recent": alerts.filter(resolved_at__isnull=False)[:10],
            "rule_count": _rules(user).count(),
            "enabled_count": _rules(user).filter(enabled=True).count(),
            "silence_count": access.restrict(user, Silence.objects.active(), "view").count(),
            "email_configured": settings.EMAIL_CONFIGURED,
            "readable_rules": _readable_rule_ids(user),
        },
    )


def _readable_rule_ids(user):
    """Rules whose recipients the user may read (their teams' rules; admins: all)."""
    return set(_rules(user).values_list("pk", flat=True))


def rule_list(request):
    user = request.user
    rows = [(r, access.allowed_actions(user, r)) for r in _rules(user)]
    return render(
        request,
        "alerts/rule_list.html",
        {"rows": rows, "can_create": _can_write(user)},
    )


def rule_new(request):
    user = request.user
    if not _can_write(user):
        raise PermissionDenied("You need the operator role in a team to make alert rules.")
    form = RuleForm(user, request.POST or None)
    if request.method == "POST":
        status = _save_rule(request, form, None)
        if status is None:
            return redirect("alerts:rules")
    else:
        status = 200
    return render(request, "alerts/rule_form.html", {"form": form, "rule": None}, status=status)


def rule_edit(request, pk):
    user = request.user
    rule = access.get_or_404(user, AlertRule.objects.select_related("team"), "view", pk=pk)
    if request.method == "POST":
        access.require(user, rule, "change")
        form = RuleForm(user, request.POST)
        status = _save_rule(request, form, rule)
        if status is None:
            return redirect("alerts:rules")
    else:
        form = RuleForm(user, initial=RuleForm.initial_from(rule))
        status = 200
    can_change = access.can(user, rule, "change")
    return render(
        request,
        "alerts/rule_form.html",
        {"form": form, "rule": rule, "can_change": can_change},
        status=status,
    )


def _save_rule(request, form, rule):
    """None when saved (the caller redirects), else the status to render the form with."""
    if not form.is_valid():
        return 400
    actor = Actor.from_request(request)
    try:
        if rule is None:
            rule = services.create_rule(actor, form.data_for_service())
            messages.success(request, f"Rule {rule.name} created.")
        else:
            changed = services.update_rule(actor, rule, form.data_for_service())
            messages.success(
                request,
                f"Rule {rule.name}: {', '.join(changed)} changed."
                if changed
                else "Nothing changed.",
            )
    except services.RuleError as exc:
        for field, error in exc.errors.items():
            target = field if field in form.fields else None
            target = {"window_seconds": "window", "for_seconds": "for_"}.get(field, target)
            form.add_error(target, error)
        return 400
    return None


@require_POST
def rule_toggle(request, pk, enabled):
    rule = access.get_or_404(request.user, AlertRule.objects.all(), "change", pk=pk)
    services.set_enabled(Actor.from_request(request), rule, enabled)
    messages.success(request, f"Rule {rule.name} {'enabled' if enabled else 'disabled'}.")
    return redirect("alerts:rules")


@require_POST
def rule_enable(request, pk):
    return rule_toggle(request, pk, True)


@require_POST
def rule_disable(request, pk):
    return rule_toggle(request, pk, False)


@require_POST
def rule_delete(request, pk):
    rule = access.get_or_404(request.user, AlertRule.objects.all(), "delete", pk=pk)
    name = rule.name
    services.delete_rule(Actor.from_request(request), rule)
    messages.success(request, f"Rule {name} deleted.")
    return redirect("alerts:rules")


STATES = {"firing": {"resolved_at__isnull": True}, "resolved": {"resolved_at__isnull": False}}


def alert_list(request):
    user = request.user
    state = request.GET.get("state") or ""
    alerts = _alerts(user)
    if state in STATES:
        alerts = alerts.filter(**STATES[state])
    else:
        state = ""
    page = Paginator(alerts, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "alerts/alert_list.html",
        {
            "page": page,
            "state": state,
            "readable_rules": _readable_rule_ids(user),
            "email_configured": settings.EMAIL_CONFIGURED,
        },
    )


def silence_list(request):
    user = request.user
    silences = access.restrict(user, Silence.objects.all(), "view").select_related(
        "team", "rule", "host", "created_by"
    )
    form = SilenceForm(user) if _can_write(user) else None
    rows = [(s, access.allowed_actions(user, s)) for s in silences[:200]]
    return render(request, "alerts/silence_list.html", {"rows": rows, "form": form})


@require_POST
def silence_new(request):
    user = request.user
    if not _can_write(user):
        raise PermissionDenied("You need the operator role in a team to make silences.")
    form = SilenceForm(user, request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            silence = services.create_silence(
                Actor.from_request(request),
                d["team"],
                d["until"],
                d["comment"],
                rule=d["rule"],
                host=d["host"],
                container_glob=d["container_glob"].strip() or "*",
            )
        except services.RuleError as exc:
            for field, error in exc.errors.items():
                form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(
                request, f"Silence {silence.pk} active until {silence.ends_at:%Y-%m-%d %H:%M} UTC."
            )
            return redirect("alerts:silences")
    silences = access.restrict(user, Silence.objects.all(), "view").select_related(
        "team", "rule", "host", "created_by"
    )
    rows = [(s, access.allowed_actions(user, s)) for s in silences[:200]]
    return render(request, "alerts/silence_list.html", {"rows": rows, "form": form}, status=400)


@require_POST
def silence_expire(request, pk):
    silence = access.get_or_404(request.user, Silence.objects.all(), "change", pk=pk)
    if services.expire_silence(Actor.from_request(request), silence):
        messages.success(request, f"Silence {silence.pk} expired.")
    else:
        messages.info(request, f"Silence {silence.pk} had already ended.")
    return redirect("alerts:silences")
