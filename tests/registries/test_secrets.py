"""The stored password is never in clear: not in the database, on any page, in the
audit log, in a job's parameters or output, nor in what the web and worker log.

One walk through everything that touches it: an admin adds the registry through the
form, tests the login, edits it without retyping the password, the team browses and
deletes a tag through the real worker; every log record of the process is captured
at DEBUG (the Celery worker runs in this process, so its logs are in the capture).
"""

import base64
import io
import logging

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from dashboard.models import AuditEntry, Job
from registries.models import Registry
from tests.registries.conftest import namespace, push
from tests.support.helpers import wait_job

pytestmark = [pytest.mark.live]


def test_password_never_shown_logged_or_stored_in_clear(
    cast, login, registry_server, docker_client, celery_worker, caplog
):
    caplog.set_level(logging.DEBUG)
    secret = registry_server.password
    basic = base64.b64encode(f"{registry_server.username}:{secret}".encode()).decode()
    admin = login(cast.admin)
    pages = []

    # Add it through the form (the password field is never rendered back).
    form = admin.get(reverse("registries:new"))
    created = admin.post(
        reverse("registries:new"),
        {
            "name": "secret-registry",
            "url": registry_server.url,
            "username": registry_server.username,
            "password": secret,
            "teams": [cast.alpha.pk],
            "tls_verify": "on",
        },
    )
    assert created.status_code == 302, created.content.decode()[:2000]
    reg = Registry.objects.get(name="secret-registry")
    assert reg.password == secret and secret not in reg.password_encrypted
    detail = admin.get(created["Location"])
    assert "Logged in to" in detail.content.decode()
    pages += [form, detail]

    # Edit without retyping: the stored password stays; the form never shows it.
    edit_url = reverse("registries:edit", args=[reg.pk])
    pages.append(admin.get(edit_url))
    saved = admin.post(
        edit_url,
        {
            "name": "secret-registry",
            "url": registry_server.url,
            "username": registry_server.username,
            "password": "",
            "teams": [cast.alpha.pk],
            "tls_verify": "on",
        },
    )
    assert saved.status_code == 302
    reg.refresh_from_db()
    assert reg.password == secret

    # Browse, test, delete a tag through the worker.
    repo = f"{namespace()}/secret"
    digest = push(docker_client, registry_server, repo, "one", unique=True)
    team = login(cast.teamadmin)
    pages.append(team.post(reverse("registries:test", args=[reg.pk]), HTTP_HX_REQUEST="true"))
    for url in (
        reverse("registries:list"),
        reverse("registries:detail", args=[reg.pk]),
        reverse("registries:repositories", args=[reg.pk]),
        reverse("registries:tags", args=[reg.pk, repo]),
    ):
        pages += [team.get(url), admin.get(url)]
    deleted = team.post(
        reverse("registries:delete_tag", args=[reg.pk]),
        {"repository": repo, "tag": "one", "digest": digest},
    )
    job = wait_job(Job.objects.get(kind="registry.delete_tag"))
    assert job.status == "succeeded", job.message
    pages += [team.get(deleted["Location"]), admin.get(reverse("audit"))]

    for page in pages:
        assert page.status_code in (200, 302)
        text = page.content.decode()
        assert secret not in text and basic not in text, page.request["PATH_INFO"]

    # The audit log and the job: what happened to the password, never the password.
    updates = AuditEntry.objects.filter(action="registry.update")
    assert [e.params["password"] for e in updates] == ["kept"]
    assert AuditEntry.objects.get(action="registry.create").params["password"] == "set"
    for entry in AuditEntry.objects.all():
        assert secret not in f"{entry.params} {entry.message} {entry.target_name}"
    assert {"registry.create", "registry.update", "registry.delete_tag"} <= set(
        AuditEntry.objects.values_list("action", flat=True)
    )
    for job in Job.objects.all():
        assert secret not in f"{job.params} {job.message} {job.target} {job.secret_params}"
        assert secret not in str(getattr(job, "output", ""))

    # The whole database, as a dump and as raw rows.
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert secret not in dump.getvalue() and basic not in dump.getvalue()
    with connection.cursor() as cur:
        for table in connection.introspection.table_names():
            cur.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - our own table names
            assert secret not in repr(cur.fetchall()), table

    # Everything logged meanwhile, web and worker (urllib3's DEBUG lines included).
    # The registry calls were logged (urllib3 at DEBUG), so the capture can prove something.
    assert "urllib3.connectionpool" in {r.name for r in caplog.records}
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert secret not in logged and basic not in logged


def test_edit_form_can_replace_and_forget_the_password(cast, login, registry, registry_server):
    admin = login(cast.admin)
    url = reverse("registries:edit", args=[registry.pk])
    base = {"name": registry.name, "url": registry.url, "username": "u", "tls_verify": "on"}

    admin.post(url, {**base, "password": "a-new-token"})
    registry.refresh_from_db()
    assert registry.password == "a-new-token"
    assert "a-new-token" not in admin.get(url).content.decode()

    admin.post(url, {**base, "clear_password": "on"})
    registry.refresh_from_db()
    assert registry.password == "" and not registry.has_password
    entries = AuditEntry.objects.filter(action="registry.update").order_by("at", "id")
    assert [e.params["password"] for e in entries] == ["changed", "cleared"]
    assert "a-new-token" not in str([e.params for e in entries])
