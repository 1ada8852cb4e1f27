"""Breach 4: secrets reached viewers. Masking looked at key names only.

Viewers see environment keys, not values; credentials inside any value, the
command or a label are masked for everybody; an operator may reveal one value,
which is audited without the value; a job keeps no environment value in clear.
"""

import pytest
from django.conf import settings
from django.urls import reverse

from containers.services import request_create
from dashboard import jobs
from dashboard.audit import Actor
from dashboard.models import AuditEntry, Job
from tests.support.helpers import RUN_LABEL, TEST_LABEL, unique

pytestmark = [pytest.mark.live]

# This run's labels: its cleanup removes what they mark, and no other run's does.
LABELS = {TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID}

DB_URL = "postgres://u:hunter2@db/x"
ENV = [f"DATABASE_URL={DB_URL}", "API_TOKEN=tok-s3cr3t", "MODE=prod"]
COMMAND = ["sh", "-c", "echo https://deploy:gh-pass-77@git.example.com/r; sleep 60"]


@pytest.fixture
def leaky(cast, make_container):
    return make_container(
        owner=cast.owner,
        team=cast.alpha,
        environment=ENV,
        command=COMMAND,
        labels={"backup.target": "s3://AKIA:label-pw-9@bucket"},
    )


def detail(client, c):
    return client.get(reverse("containers:detail", args=[c.pk])).content.decode()


def test_viewer_sees_env_keys_but_no_values(cast, login, leaky):
    page = detail(login(cast.viewer), leaky)

    assert "DATABASE_URL" in page and "MODE" in page
    for secret in ("hunter2", "tok-s3cr3t", "postgres://u:", ">prod<"):
        assert secret not in page
    assert "Reveal" not in page


def test_credentials_in_values_command_and_labels_are_masked_even_for_operators(cast, login, leaky):
    page = detail(login(cast.operator), leaky)

    assert "postgres://u:••••••@db/x" in page  # the harmless-looking key
    assert "prod" in page
    for secret in ("hunter2", "tok-s3cr3t", "gh-pass-77", "label-pw-9"):
        assert secret not in page
    assert "Reveal" in page


def test_mirror_and_list_never_hold_the_command_credentials(cast, login, leaky):
    leaky.refresh_from_db()
    assert "gh-pass-77" not in leaky.command
    page = login(cast.admin).get(reverse("containers:list")).content.decode()
    assert "gh-pass-77" not in page


@pytest.mark.parametrize("who,status", [("outsider", 404), ("viewer", 403), ("operator", 200)])
def test_reveal_is_for_operators_and_is_audited_without_the_value(cast, login, leaky, who, status):
    response = login(getattr(cast, who)).post(
        reverse("containers:reveal_env", args=[leaky.pk]), {"key": "DATABASE_URL"}
    )

    assert response.status_code == status
    entries = AuditEntry.objects.filter(action="container.reveal_env")
    if status == 200:
        assert DB_URL in response.content.decode()
        entry = entries.get()
        assert (entry.username, entry.params) == ("operator", {"key": "DATABASE_URL"})
        assert "hunter2" not in str(entry.params) + entry.message
    else:
        assert "hunter2" not in response.content.decode()
        assert not entries.exists()


def test_job_params_keep_no_environment_value(cast, local_host, engine_cleanup, no_task_queue):
    spec = {
        "image": "dockyard-test/busybox:latest",
        "name": unique("envjob"),
        "command": ["sleep", "60"],
        "env": {"DATABASE_URL": DB_URL},
        "labels": LABELS,
    }
    job = request_create(Actor(cast.operator), local_host, cast.alpha, spec)
    queued = Job.objects.get(pk=job.pk)
    assert "hunter2" not in str(queued.params) and "hunter2" not in queued.secret_params
    assert queued.params["env_keys"] == ["DATABASE_URL"]

    done = jobs.run(job.pk)

    assert done.status == Job.Status.SUCCEEDED, done.message
    assert done.secret_params == ""  # gone once the job ended
    # …and the container really got the value.
    env = engine_cleanup.api.inspect_container(spec["name"])["Config"]["Env"]
    assert f"DATABASE_URL={DB_URL}" in env
    entry = AuditEntry.objects.get(action="container.create")
    assert "hunter2" not in str(entry.params)


def test_job_params_mask_credentials_in_the_command_and_labels(
    cast, local_host, engine_cleanup, no_task_queue
):
    spec = {
        "image": "dockyard-test/busybox:latest",
        "name": unique("cmdjob"),
        "command": ["sh", "-c", "echo https://deploy:gh-pass-77@git.example.com; sleep 60"],
        "labels": {**LABELS, "backup": "s3://AKIA:label-pw-9@bucket"},
    }
    job = request_create(Actor(cast.operator), local_host, cast.alpha, spec)
    queued = Job.objects.get(pk=job.pk)
    for secret in ("gh-pass-77", "label-pw-9"):
        assert secret not in str(queued.params) and secret not in queued.secret_params

    done = jobs.run(job.pk)

    assert done.status == Job.Status.SUCCEEDED, done.message
    info = engine_cleanup.api.inspect_container(spec["name"])
    assert "gh-pass-77" in " ".join(info["Config"]["Cmd"])  # the real command ran
    assert info["Config"]["Labels"]["backup"] == "s3://AKIA:label-pw-9@bucket"


@pytest.mark.parametrize(
    "command,env,secret",
    [
        # runc names the executable it could not start: here a URL with a password…
        (["/opt/https://deploy:gh-pass-77@git.example.com/run"], {}, "gh-pass-77"),
        # …or an environment value (the job must not repeat it to the page or the log).
        (["/opt/tok-s3cr3t/run"], {"RUNNER": "/opt/tok-s3cr3t/run"}, "tok-s3cr3t"),
    ],
)
def test_an_engine_error_quoting_a_secret_is_masked_in_the_job_and_audit(
    cast, local_host, engine_cleanup, command, env, secret
):
    spec = {"image": "dockyard-test/busybox:latest", "name": unique("badcmd")}
    spec.update(command=command, env=env, labels=LABELS)

    job = jobs.run(request_create(Actor(cast.operator), local_host, cast.alpha, spec).pk)

    assert job.status == Job.Status.FAILED
    assert "no such file" in job.message  # the engine's reason is still there
    entry = AuditEntry.objects.get(action="container.create")
    assert entry.result == AuditEntry.Result.FAILED
    for text in (job.message, entry.message):
        assert secret not in text
