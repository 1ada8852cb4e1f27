"""The image mirror and who owns what: one row per image id per host.

New images appear unowned (dashboard admins only); vanished ones get `removed_at`.
An id that comes back after it was seen gone is nobody's again: whoever loaded it
this time is not known. Jobs record what they made with `own_image`.
"""

from datetime import UTC, datetime

from django.utils import timezone

from containers.models import Container
from containers.policy import PolicyError
from dashboard import access
from dashboard.engine import EngineError, engine

from ..models import Image

NONE_TAG = "<none>:<none>"
NONE_DIGEST = "<none>@<none>"


def _fields(item):
    created = item.get("Created")
    return {
        "tags": sorted(t for t in item.get("RepoTags") or [] if t != NONE_TAG),
        "digests": sorted(d for d in item.get("RepoDigests") or [] if d != NONE_DIGEST),
        "size": int(item.get("Size") or 0),
        "created": datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None,
    }


def sync_images(host):
    """Mirror the host's images (one list call); returns how many the engine has."""
    with engine(host) as client:
        live = client.api.images(all=False)
    now = timezone.now()
    known = {i.docker_id: i for i in Image.objects.filter(host=host)}
    seen = set()
    for item in live:
        docker_id = item["Id"]
        seen.add(docker_id)
        fields = _fields(item)
        row = known.get(docker_id)
        if row is None:
            # get_or_create: a job may be recording the same new image right now.
            Image.objects.get_or_create(host=host, docker_id=docker_id, defaults=fields)
            continue
        if row.removed_at is not None:
            # Gone and back: loaded again by someone the dashboard does not know.
            fields.update(
                removed_at=None, team=None, owner=None, shared=False, created_by_dashboard=False
            )
        if any(getattr(row, k) != v for k, v in fields.items()):
            Image.objects.filter(pk=row.pk).update(**fields)
    Image.objects.present().filter(host=host, first_seen__lt=now).exclude(
        docker_id__in=seen
    ).update(removed_at=now)
    return len(live)


def refresh(hosts):
    """Sync each host; returns {host_id: message} for those that failed."""
    errors = {}
    for host in hosts:
        try:
            sync_images(host)
        except EngineError as exc:
            errors[host.pk] = exc.message
    return errors


def record_image(api, host, docker_id, team=None, owner=None):
    """Mirror one image the engine has now (by id); with `team`, make it the team's when
    it is nobody's yet. Returns the row."""
    info = api.inspect_image(docker_id)
    fields = {
        "tags": sorted(t for t in info.get("RepoTags") or [] if t != NONE_TAG),
        "digests": sorted(d for d in info.get("RepoDigests") or [] if d != NONE_DIGEST),
        "size": int(info.get("Size") or 0),
        "removed_at": None,
    }
    from containers.inspect import parse_time

    fields["created"] = parse_time(info.get("Created") or "")
    row, made = Image.objects.get_or_create(host=host, docker_id=info["Id"], defaults=fields)
    if not made:
        if row.removed_at is not None:
            fields.update(team=None, owner=None, shared=False, created_by_dashboard=False)
        Image.objects.filter(pk=row.pk).update(**fields)
        row.refresh_from_db()
    if team is not None and row.team_id is None:
        Image.objects.filter(pk=row.pk, team__isnull=True).update(
            team=team, owner=owner, created_by_dashboard=True
        )
        row.refresh_from_db()
    return row


def own_image(api, host, docker_id, team, owner):
    """Record an image a job made for `team`. Returns (row, note): the note says when
    the same image was already another team's (it stays theirs)."""
    row = record_image(api, host, docker_id, team, owner)
    if row.team_id != team.pk:
        return row, (
            "The result is an image that is already on the host and not your team's; "
            "it stays with its owner (a dashboard admin can share it)."
        )
    return row, ""


def tag_owner_problem(user, host, team, tagged, api=None):
    """Why `tagged` (repo:tag) may not be (re)pointed for `team` on `host`, or "".

    A tag that names another team's image (or a shared base, or an image nobody owns)
    would move under that image's users: only a dashboard admin may do that.
    """
    if access.is_admin(user):
        return ""
    if api is not None:
        try:
            docker_id = api.inspect_image(tagged)["Id"]
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404 or "No such image" in str(exc):
                return ""
            raise
        row = Image.objects.present().filter(host=host, docker_id=docker_id).first()
    else:
        row = next((r for r in Image.objects.present().filter(host=host) if tagged in r.tags), None)
        if row is None:
            return ""
    if row is not None and row.team_id == team.pk and not row.shared:
        return ""
    return (
        f"The tag {tagged} on {host.name} names an image that is not your team's"
        f"{' (a shared base image)' if row is not None and row.shared else ''}; "
        "pick another name or tag."
    )


def check_tag(user, host, team, tagged, api=None):
    problem = tag_owner_problem(user, host, team, tagged, api)
    if problem:
        raise PolicyError("tag", problem)


def containers_using(host, docker_id, api):
    """[(container id, name, team_id or None)] of the containers (any state) made from
    the image."""
    listed = api.containers(all=True, filters={"ancestor": docker_id})
    mine = [c for c in listed if c.get("ImageID") == docker_id]
    teams = dict(
        Container.objects.filter(host=host, docker_id__in=[c["Id"] for c in mine]).values_list(
            "docker_id", "team_id"
        )
    )
    return [
        (c["Id"], (c.get("Names") or ["/" + c["Id"][:12]])[0].lstrip("/"), teams.get(c["Id"]))
        for c in mine
    ]


def usage_counts(host, api):
    """{image id: number of containers made from it} from one list call."""
    counts = {}
    for c in api.containers(all=True):
        counts[c.get("ImageID")] = counts.get(c.get("ImageID"), 0) + 1
    return counts
