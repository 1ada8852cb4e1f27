"""`manage.py load_alert_rules FILE.yml`: create or update by name, idempotent, clear errors."""

import pytest
from django.core.management import CommandError, call_command

from alerts.models import AlertRule
from dashboard.models import AuditEntry

RULES = """
rules:
  - name: hot-cpu
    match: {container: "web-*", team: alpha}
    metric: cpu_percent
    op: ">"
    threshold: 80
    for: 1m
    recipients: [ops@example.com]
  - name: died
    match: {container: "*"}
    event: died_nonzero
    recipients: [ops@example.com, oncall@example.com]
  - name: loops
    match: {team: alpha, host: local}
    event: restart_loop
    restarts: 5
    within: 10m
    repeat: 4h
    send_resolved: false
    recipients: [ops@example.com]
"""


def load(tmp_path, text, name="rules.yml"):
    path = tmp_path / name
    path.write_text(text)
    from io import StringIO

    out = StringIO()
    call_command("load_alert_rules", str(path), stdout=out)
    return out.getvalue()


def snapshot():
    return list(AlertRule.objects.order_by("name").values())


def test_loading_twice_changes_nothing_the_second_time(cast, local_host, tmp_path):
    out = load(tmp_path, RULES)
    assert "3 created" in out
    hot = AlertRule.objects.get(name="hot-cpu")
    assert (hot.team, hot.name_glob, hot.metric, hot.op, hot.threshold, hot.for_seconds) == (
        cast.alpha,
        "web-*",
        "cpu_percent",
        ">",
        80.0,
        60,
    )
    loops = AlertRule.objects.get(name="loops")
    assert (loops.host, loops.restart_count, loops.restart_window_seconds) == (local_host, 5, 600)
    assert loops.repeat_seconds == 14400 and loops.send_resolved is False
    died = AlertRule.objects.get(name="died")
    assert died.team is None and died.recipients == ["ops@example.com", "oncall@example.com"]
    assert AuditEntry.objects.filter(action="alert_rule.create").count() == 3

    before, audits = snapshot(), AuditEntry.objects.count()
    out = load(tmp_path, RULES)
    assert "Nothing changed" in out and "hot-cpu: unchanged" in out
    assert snapshot() == before
    assert AuditEntry.objects.count() == audits

    out = load(tmp_path, RULES.replace("threshold: 80", "threshold: 90"))
    assert "hot-cpu: updated: threshold" in out and "1 updated, 2 unchanged" in out
    assert AlertRule.objects.get(name="hot-cpu").threshold == 90
    assert AuditEntry.objects.filter(action="alert_rule.update").count() == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("rules: [", "not valid YAML at line"),
        ("- name: x", "a mapping with a list under `rules:`"),
        (
            "rules:\n  - name: a\n    metric: cpu_percnt\n    threshold: 1\n"
            "    recipients: [a@b.c]",
            "rule 1 (a): metric: unknown metric 'cpu_percnt'",
        ),
        (
            "rules:\n  - name: a\n    event: exploded\n    recipients: [a@b.c]",
            "rule 1 (a): event: unknown event 'exploded'",
        ),
        (
            "rules:\n  - name: a\n    match: {team: gamma}\n    event: oom\n"
            "    recipients: [a@b.c]",
            "match.team: no team named 'gamma'",
        ),
        (
            "rules:\n  - name: a\n    event: oom\n    recipients: [not-an-address]",
            "recipients: not an email address",
        ),
        (
            "rules:\n  - name: a\n    event: oom\n    for: soon\n    recipients: [a@b.c]",
            "for: expected a duration",
        ),
        (
            "rules:\n  - name: a\n    event: oom\n    treshold: 3\n    recipients: [a@b.c]",
            "unknown key(s) treshold",
        ),
        (
            "rules:\n  - name: a\n    metric: cpu_percent\n    recipients: [a@b.c]",
            "threshold: a metric rule needs a numeric threshold",
        ),
        (
            "rules:\n  - name: a\n    metric: cpu_percent\n    event: oom\n    threshold: 1\n"
            "    recipients: [a@b.c]",
            "either a metric or an event",
        ),
    ],
)
def test_a_bad_file_says_what_is_wrong_and_changes_nothing(cast, tmp_path, text, message):
    with pytest.raises(CommandError) as err:
        load(tmp_path, text)
    assert message in str(err.value), str(err.value)
    assert "nothing changed" in str(err.value)
    assert not AlertRule.objects.exists()


def test_one_bad_rule_and_the_good_ones_are_not_loaded_either(cast, tmp_path):
    text = RULES + "  - name: bad\n    event: nope\n    recipients: [a@b.c]\n"
    with pytest.raises(CommandError, match="rule 4 \\(bad\\)"):
        load(tmp_path, text)
    assert not AlertRule.objects.exists()


def test_missing_file_is_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("load_alert_rules", str(tmp_path / "nope.yml"))
