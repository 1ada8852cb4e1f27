"""Bad input through the views, run by the real worker on the real engine.

Each case must give a message an operator can read and change nothing: either the
form refuses it (422, no Job) or the job fails with the engine's reason, and no
container is left on the engine nor a row added to the mirror.
"""

import html
import re
import socket

import pytest
from django.conf import settings
from django.urls import resolve, reverse
from django.utils.html import strip_tags

from containers.models import Container
from dashboard.models import AuditEntry, Host, Job
from tests.conftest import LOOP as LOOP_ARGV
from tests.support.helpers import RUN_LABEL, TEST_LABEL, engine_state, unique, wait_job

pytestmark = [pytest.mark.live]

LOOP = "sh -c \"trap 'exit 0' TERM; while true; do sleep 1; done\""
XSS = "<script>x</script>"


def post_create(web, host, team, **fields):
    data = {
        "host": host.pk,
        "team": team.pk,
        "image": settings.TEST_IMAGE,
        "name": unique("bad"),
        "command": LOOP,
        "restart": "no",
        "labels": f"{TEST_LABEL}=1",
        **fields,
    }
    return web.post(reverse("containers:new"), data)


def job_of(response):
    """The job a successful form post redirected to, once the worker has finished it."""
    assert response.status_code == 302, response.content.decode()[:2000]
    match = resolve(response.url)
    assert match.url_name == "job"
    return wait_job(match.kwargs["pk"])


def named(docker_client, name):
    """Containers in any state (created, exited, …) called exactly `name`."""
    found = docker_client.containers.list(all=True, filters={"name": name})
    return [c for c in found if c.name == name]


def made_by(docker_client, job):
    """Containers this run's app made for `job` (job ids repeat across test runs)."""
    labels = [f"dockyard.nonce={job.nonce}", f"{RUN_LABEL}={settings.RUN_ID}"]
    return docker_client.containers.list(all=True, filters={"label": labels})


def mirror(host):
    """The mirror rows of one host (other hosts may be synced by a page meanwhile)."""
    return set(
        Container.objects.filter(host=host).values_list(
            "pk", "docker_id", "name", "state", "removed_at"
        )
    )


def page_text(response):
    """The page as a reader sees it: tags dropped, entities decoded."""
    return html.unescape(strip_tags(response.content.decode()))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- refused by the form


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"image": "UPPER/Case::x"}, "image", "'UPPER/Case::x' is not a valid image reference"),
        ({"image": "a b"}, "image", "'a b' is not a valid image reference"),
        ({"ports": "127.0.0.1:0:80"}, "ports", "Host port 0 is out of range (1–65535)."),
        ({"ports": "70000:80"}, "ports", "Host port 70000 is out of range (1–65535)."),
        ({"ports": "8080:70000"}, "ports", "Container port 70000 is out of range (1–65535)."),
        ({"ports": "abc:80"}, "ports", "Host port 'abc' is not a number."),
        (
            {"name": "<script>alert(1)</script>"},
            "name",
            "Name may contain only letters, digits, '_', '.' and '-'",
        ),
    ],
    ids=[
        "upper-case-image",
        "image-with-space",
        "port-0",
        "port-70000",
        "container-port-70000",
        "port-abc",
        "script-name",
    ],
)
def test_invalid_create_input_is_refused_by_the_form_and_queues_nothing(
    cast, login, local_host, engine_cleanup, fields, field, message
):
    web = login(cast.owner)
    name = fields.get("name") or unique("bad")
    before = mirror(local_host)

    response = post_create(web, local_host, cast.alpha, **{"name": name, **fields})

    assert response.status_code == 422
    errors = response.context["form"].errors
    assert any(message in e for e in errors[field]), errors
    assert message in page_text(response)
    # What the user typed is shown back escaped, never as markup.
    raw = response.content.decode()
    assert "<script>alert(1)" not in raw
    if "<" in name:
        assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in raw
    assert not Job.objects.exists()
    assert mirror(local_host) == before
    assert not Container.objects.filter(name=name).exists()
    if "<" not in name:  # (a name with markup cannot exist on an engine at all)
        assert named(engine_cleanup, name) == []


def test_name_in_the_mirror_is_refused_by_the_form(
    cast, login, local_host, make_container, engine_cleanup
):
    taken = make_container(owner=cast.owner, team=cast.alpha)
    web = login(cast.owner)
    before = mirror(local_host)

    response = post_create(web, local_host, cast.alpha, name=taken.name)

    assert response.status_code == 422
    message = f"A container named '{taken.name}' already exists on local."
    assert response.context["form"].errors["name"] == [message]
    assert message in page_text(response)
    assert not Job.objects.exists()
    assert mirror(local_host) == before
    assert [c.id for c in named(engine_cleanup, taken.name)] == [taken.docker_id]
    assert engine_state(engine_cleanup, taken.docker_id) == "running"


def test_name_of_a_container_the_user_cannot_see_gets_a_neutral_refusal(
    cast, login, local_host, make_container, engine_cleanup
):
    theirs = make_container(owner=cast.outsider, team=cast.beta)
    web = login(cast.owner)
    before = mirror(local_host)

    response = post_create(web, local_host, cast.alpha, name=theirs.name)

    assert response.status_code == 422
    message = f"The name '{theirs.name}' cannot be used on local; choose another."
    assert response.context["form"].errors["name"] == [message]
    assert "already exists" not in page_text(response)
    assert theirs.docker_id[:12] not in response.content.decode()
    assert not Job.objects.exists()
    assert mirror(local_host) == before
    assert engine_state(engine_cleanup, theirs.docker_id) == "running"


# ---------------------------------------------------------------- refused by the engine


def assert_failed_create_changed_nothing(web, job, host, name, before):
    assert job.status == Job.Status.FAILED, job.message
    page = web.get(reverse("job", args=[job.pk]))
    assert page.status_code == 200
    assert job.message in page_text(page)
    assert job.container is None
    assert mirror(host) == before
    assert not Container.objects.filter(name=name).exists()
    entry = AuditEntry.objects.get(action="container.create")
    assert (entry.result, entry.target_name, entry.message) == ("failed", name, job.message)


def test_unknown_image_fails_the_job_naming_the_image(
    cast, login, local_host, celery_worker, engine_cleanup
):
    web = login(cast.owner)
    name = unique("noimg")
    before = mirror(local_host)

    job = job_of(
        post_create(web, local_host, cast.alpha, name=name, image="dockyard-test/no-such-image:1")
    )

    assert "'dockyard-test/no-such-image:1' is not on this host and could not be pulled" in (
        job.message
    )
    assert_failed_create_changed_nothing(web, job, local_host, name, before)
    assert named(engine_cleanup, name) == []
    assert engine_cleanup.images.list(name="dockyard-test/no-such-image") == []


def test_taken_host_port_fails_the_job_and_leaves_no_second_container(
    cast, login, local_host, make_container, celery_worker, engine_cleanup
):
    port = free_port()
    first = make_container(owner=cast.owner, team=cast.alpha, ports={"80/tcp": ("127.0.0.1", port)})
    web = login(cast.owner)
    name = unique("port")
    before = mirror(local_host)

    job = job_of(post_create(web, local_host, cast.alpha, name=name, ports=f"127.0.0.1:{port}:80"))

    assert f"127.0.0.1:{port}" in job.message
    assert "already allocated" in job.message
    assert_failed_create_changed_nothing(web, job, local_host, name, before)
    # Not even a created-but-never-started one: the job removes what it made.
    assert named(engine_cleanup, name) == []
    assert made_by(engine_cleanup, job) == []
    assert engine_state(engine_cleanup, first.docker_id) == "running"


def test_name_taken_on_the_engine_but_not_yet_mirrored_fails_with_the_engine_conflict(
    cast, login, local_host, celery_worker, engine_cleanup
):
    name = unique("race")
    # Created behind the dashboard's back: the mirror does not know it yet.
    other = engine_cleanup.containers.run(
        settings.TEST_IMAGE,
        LOOP_ARGV,
        name=name,
        detach=True,
        labels={TEST_LABEL: "1", RUN_LABEL: settings.RUN_ID},
    )
    web = login(cast.owner)
    before = mirror(local_host)

    job = job_of(post_create(web, local_host, cast.alpha, name=name))

    # The clashing container is not one the user can see: a neutral message, not the
    # engine's (which names the other container's id).
    assert job.message == f"The name '{name}' cannot be used on local; choose another."
    assert other.id[:12] not in job.message
    assert_failed_create_changed_nothing(web, job, local_host, name, before)
    assert [c.id for c in named(engine_cleanup, name)] == [other.id]
    assert engine_state(engine_cleanup, other.id) == "running"
    assert made_by(engine_cleanup, job) == []


# ---------------------------------------------------------------- unreachable hosts


@pytest.mark.parametrize(
    "url, reason",
    [
        ("unix:///tmp/dockyard-nonexistent.sock", "socket not found"),
        ("tcp://127.0.0.1:1", "connection refused"),
    ],
    ids=["missing-socket", "refused-tcp"],
)
def test_unreachable_host_renders_pages_and_refuses_creates_clearly(
    cast, login, local_host, celery_worker, engine_cleanup, url, reason
):
    # Open to every team; plain tcp:// only ever on purpose (insecure), as the form demands.
    ghost = Host.objects.create(
        name="ghost", url=url, all_teams=True, insecure=url.startswith("tcp://")
    )
    last_seen = Container.objects.create(
        host=ghost, docker_id="f" * 64, name=unique("ghosted"), state="running", team=cast.alpha
    )
    web = login(cast.owner)
    name = unique("onghost")
    before = mirror(ghost)

    # A host never checked yet: the form lets it through, the job says why it failed.
    job = job_of(post_create(web, ghost, cast.alpha, name=name))
    assert job.status == Job.Status.FAILED
    assert f"Host ghost is unreachable ({url}): {reason}" == job.message
    ghost.refresh_from_db()
    assert ghost.state == Host.State.UNREACHABLE

    response = web.get(reverse("containers:list"))
    assert response.status_code == 200
    text = page_text(response)
    assert f"Host ghost is unreachable: Host ghost is unreachable ({url}): {reason}" in text
    assert last_seen.name in text  # shown as last seen
    assert "state-unreachable" in response.content.decode()
    ghost.refresh_from_db()
    assert (ghost.state, ghost.last_error) == (Host.State.UNREACHABLE, job.message)

    response = web.get(reverse("containers:detail", args=[last_seen.pk]))
    assert response.status_code == 200
    assert f"Live details unavailable: Host ghost is unreachable ({url}): {reason}" in (
        page_text(response)
    )

    # Now known unreachable: the form says so before anything is queued.
    response = post_create(web, ghost, cast.alpha, name=name)
    assert response.status_code == 422
    assert response.context["form"].errors["host"] == [
        f"Host ghost is unreachable: Host ghost is unreachable ({url}): {reason}"
    ]
    assert Job.objects.count() == 1
    assert mirror(ghost) == before
    assert not Container.objects.filter(name=name).exists()
    assert named(engine_cleanup, name) == []


# ---------------------------------------------------------------- markup from Docker


def test_markup_in_env_label_and_command_from_docker_is_escaped(cast, login, make_container):
    evil = make_container(
        owner=cast.owner,
        team=cast.alpha,
        command=[*LOOP_ARGV, XSS],  # the extra word is the shell's $0: harmless, but shown
        environment={"GREETING": XSS},
        labels={"note": XSS},
    )
    web = login(cast.owner)

    response = web.get(reverse("containers:detail", args=[evil.pk]))
    assert response.status_code == 200
    raw = response.content.decode()
    assert "<script>x" not in raw
    escaped = "&lt;script&gt;x&lt;/script&gt;"
    assert raw.count(escaped) >= 3  # command, env value, label value
    # Operators see env values (escaped); the Reveal form may follow the value.
    assert re.search(rf'<td class="mono">GREETING</td>\s*<td class="mono"[^>]*>{escaped}\s*<', raw)
    assert f'<td class="mono">note</td><td class="mono">{escaped}</td>' in raw

    response = web.get(reverse("containers:list"), {"q": XSS})
    assert response.status_code == 200
    raw = response.content.decode()
    assert "<script>x" not in raw
    assert f'value="{escaped}"' in raw  # the search box echoes it, escaped

    response = web.get(reverse("containers:list"))
    assert response.status_code == 200
    raw = response.content.decode()
    assert evil.name in raw
    assert "<script>x" not in raw
