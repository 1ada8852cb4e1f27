"""Images pages: the per-host list, pull, build, import, and one image's details.

Views stay thin: the gate (`access.get_or_404`) picks the image, a service checks
again and queues the job, and the page sends the user to the job's live output.
"""

from datetime import UTC, datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from containers.forms import AssignTeamForm
from containers.models import Container
from containers.policy import PolicyError
from dashboard import access
from dashboard import services as dashboard_services
from dashboard.audit import Actor
from dashboard.engine import EngineError, engine
from dashboard.models import Host, Team

from . import services
from .context import ContextError
from .forms import (
    BuildForm,
    CopyForm,
    ImageFilterForm,
    ImportForm,
    PullForm,
    TagChoiceForm,
    TagForm,
)
from .models import Image
from .reference import BadReference

LIST_LIMIT = 1000


def _visible_hosts(user):
    return list(access.restrict(user, Host.objects.all(), "view"))


def _can_create(user):
    return access.restrict(user, Host.objects.all(), "create_image").exists() and (
        access.is_admin(user) or access.creatable_teams(user).exists()
    )


def image_list(request):
    filters = ImageFilterForm(request.GET).values() if request.GET else {}
    hosts = _visible_hosts(request.user)
    host_id = filters.get("host")
    shown = [h for h in hosts if host_id is None or h.pk == host_id]
    errors = services.refresh(shown)
    usage = {}
    for host in shown:
        if host.pk in errors:
            continue
        try:
            with engine(host) as client:
                usage[host.pk] = services.usage_counts(host, client.api)
        except EngineError as exc:
            errors[host.pk] = exc.message
    rows = (
        access.restrict(request.user, Image.objects.present(), "view")
        .filter(host__in=shown)
        .select_related("host", "team", "owner")
    )
    if filters.get("team"):
        rows = rows.filter(team_id=filters["team"])
    if filters.get("shared"):
        rows = rows.filter(shared=True)
    q = (filters.get("q") or "").strip().lower()
    dangling = filters.get("dangling") or ""
    listed = []
    for image in rows[: LIST_LIMIT * 2]:
        if dangling == "1" and not image.dangling or dangling == "0" and image.dangling:
            continue
        if q and q not in image.docker_id and not any(q in t.lower() for t in image.tags):
            continue
        used = usage.get(image.host_id, {}).get(image.docker_id, 0)
        listed.append((image, access.allowed_actions(request.user, image), used))
    listed = listed[:LIST_LIMIT]
    admin = access.is_admin(request.user)
    return render(
        request,
        "images/list.html",
        {
            "rows": listed,
            "hosts": hosts,
            "filters": filters,
            "teams": access.restrict(request.user, Team.objects.all(), "view"),
            "host_errors": {h: errors[h.pk] for h in shown if h.pk in errors},
            "can_create": _can_create(request.user),
            "is_admin": admin,
            "prune_hosts": shown if admin else [],
        },
    )


def _form_errors(form, exc):
    field = getattr(exc, "field", None)
    message = getattr(exc, "message", None) or str(exc)
    form.add_error(field if field in form.fields else None, message)


def pull(request):
    if not _can_create(request.user):
        raise PermissionDenied("You need the operator role in a team to pull images.")
    form = PullForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ref, registry = services.build_reference(
                request.user,
                data["team"],
                text=data["reference"],
                registry_id=data["registry"].pk if data["registry"] else None,
                repository=data["repository"],
                tag=data["tag"],
            )
            job = services.request_pull(
                Actor.from_request(request), data["host"], data["team"], ref, registry
            )
        except (BadReference, PolicyError) as exc:
            _form_errors(form, exc)
        else:
            messages.info(request, f"Pulling {ref}: follow the progress below.")
            return redirect("job", pk=job.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "images/pull.html", {"form": form}, status=status)


def build(request):
    if not _can_create(request.user):
        raise PermissionDenied("You need the operator role in a team to build images.")
    form = BuildForm(request.user, request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = services.request_build(
                Actor.from_request(request),
                data["host"],
                data["team"],
                tag=data["tag"],
                dockerfile_text=data["dockerfile_text"],
                upload=data["context"],
                dockerfile=data["dockerfile"] or "Dockerfile",
                build_args=data["build_args"],
                target=data["target"],
            )
        except (BadReference, PolicyError, ContextError) as exc:
            _form_errors(form, exc)
        else:
            messages.info(request, f"Building {data['tag']}: the output follows below.")
            return redirect("job", pk=job.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "images/build.html", {"form": form}, status=status)


def load(request):
    if not _can_create(request.user):
        raise PermissionDenied("You need the operator role in a team to import images.")
    form = ImportForm(request.user, request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = services.request_load(
                Actor.from_request(request), data["host"], data["team"], data["archive"]
            )
        except PolicyError as exc:
            _form_errors(form, exc)
        else:
            messages.info(request, "Loading the archive: follow the job below.")
            return redirect("job", pk=job.pk)
    status = 422 if request.method == "POST" else 200
    return render(request, "images/import.html", {"form": form}, status=status)


@require_POST
def prune(request):
    if not access.is_admin(request.user):
        raise PermissionDenied("Only dashboard admins prune images.")
    host = access.get_or_404(request.user, Host.objects.all(), pk=_post_id(request, "host"))
    job = services.request_prune(Actor.from_request(request), host)
    messages.info(request, f"Pruning dangling images on {host.name}.")
    return redirect("job", pk=job.pk)


def _post_id(request, name):
    value = request.POST.get(name) or ""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else 0


def _get(request, pk, action="view"):
    return access.get_or_404(
        request.user, Image.objects.present().select_related("host", "team", "owner"), action, pk=pk
    )


def detail(request, pk):
    image = _get(request, pk)
    history, used_by, error, hidden = [], [], "", 0
    try:
        with engine(image.host) as client:
            history = client.api.history(image.docker_id)
            for layer in history:
                created = layer.get("Created")
                layer["created_at"] = (
                    datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None
                )
            users = services.containers_using(image.host, image.docker_id, client.api)
    except EngineError as exc:
        error = exc.message
    else:
        # Names of containers the reader may not see stay unsaid: only how many.
        visible = dict(
            access.restrict(request.user, Container.objects.present(), "view")
            .filter(host=image.host, docker_id__in=[u[0] for u in users])
            .values_list("docker_id", "pk")
        )
        used_by = [(visible[cid], name) for cid, name, _team in users if cid in visible]
        hidden = len(users) - len(used_by)
    actions = access.allowed_actions(request.user, image)
    return render(
        request,
        "images/detail.html",
        {
            "image": image,
            "history": history,
            "used_by": used_by,
            "hidden_users": hidden,
            "engine_error": error,
            "actions": actions,
            "tag_form": TagForm(),
            "copy_form": CopyForm(request.user, image) if "copy" in actions else None,
            "assign_form": AssignTeamForm(initial={"team": image.team_id})
            if "assign" in actions
            else None,
        },
    )


def _queued(request, image, call, done):
    try:
        job = call()
    except (BadReference, PolicyError) as exc:
        messages.error(request, getattr(exc, "message", None) or str(exc))
        return redirect("images:detail", pk=image.pk)
    messages.info(request, done)
    return redirect("job", pk=job.pk)


@require_POST
def tag(request, pk):
    image = _get(request, pk, "tag")
    form = TagForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("target", ["Give a name."])))
        return redirect("images:detail", pk=image.pk)
    target = form.cleaned_data["target"]
    actor = Actor.from_request(request)
    return _queued(
        request,
        image,
        lambda: services.request_tag(actor, image, target),
        f"Tagging as {target}.",
    )


@require_POST
def push(request, pk):
    image = _get(request, pk, "push")
    form = TagChoiceForm(request.POST)
    tag_name = form.cleaned_data["tag"] if form.is_valid() else ""
    actor = Actor.from_request(request)
    return _queued(
        request,
        image,
        lambda: services.request_push(actor, image, tag_name),
        f"Pushing {tag_name}: follow the progress below.",
    )


@require_POST
def remove(request, pk):
    image = _get(request, pk, "remove")
    form = TagChoiceForm(request.POST)
    data = form.cleaned_data if form.is_valid() else {"tag": "", "force": False}
    actor = Actor.from_request(request)
    what = data["tag"] or f"image {image.name}"
    return _queued(
        request,
        image,
        lambda: services.request_remove(actor, image, data["tag"], data["force"]),
        f"Removing {what}.",
    )


@require_POST
def export(request, pk):
    image = _get(request, pk, "export")
    chunks = services.export_chunks(Actor.from_request(request), image)
    response = StreamingHttpResponse(chunks, content_type="application/x-tar")
    name = image.name.replace("/", "_").replace(":", "_")
    response["Content-Disposition"] = f'attachment; filename="{name}.tar"'
    return response


@require_POST
def copy(request, pk):
    image = _get(request, pk, "copy")
    form = CopyForm(request.user, image, request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a host you may use.")
        return redirect("images:detail", pk=image.pk)
    target = form.cleaned_data["to_host"]
    actor = Actor.from_request(request)
    return _queued(
        request,
        image,
        lambda: services.request_copy(actor, image, target),
        f"Copying {image.name} to {target.name}.",
    )


@require_POST
def assign(request, pk):
    image = _get(request, pk, "assign")
    form = AssignTeamForm(request.POST)
    if form.is_valid():
        dashboard_services.assign_team(
            Actor.from_request(request), image, form.cleaned_data["team"]
        )
        messages.success(request, f"Image {image.name} now belongs to {image.team or 'no team'}.")
    else:
        messages.error(request, "Choose a team.")
    return redirect("images:detail", pk=image.pk)


@require_POST
def share(request, pk):
    image = _get(request, pk, "share")
    shared = request.POST.get("shared") == "1"
    services.share(Actor.from_request(request), image, shared)
    messages.success(
        request,
        f"Image {image.name} is {'now a shared base image' if shared else 'no longer shared'}.",
    )
    return redirect("images:detail", pk=image.pk)
