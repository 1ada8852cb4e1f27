"""Registry pages: list, details and test login, admin edit, and browsing.

Browsing reads the registry while the page renders, with short timeouts
(REGISTRY_CONNECT_TIMEOUT / REGISTRY_READ_TIMEOUT) and one page of results at a
time, so an unreachable registry costs a few seconds and a clear banner, never a
hung page. Deleting a tag changes the registry: that is a Job, audited.
"""

from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from dashboard import access
from dashboard.audit import Actor

from . import services
from .client import RegistryClient, RegistryError
from .forms import RegistryForm
from .manifests import DIGEST_RE, valid_repository, valid_tag
from .models import Registry

CATALOG_PAGE = 50
TAGS_PAGE = 20
# Tag details (manifest, config blob) are fetched this many at a time.
DETAIL_THREADS = 4


def _admin_only(request):
    if not access.is_admin(request.user):
        raise PermissionDenied("Only dashboard admins manage registries.")


def _client(registry):
    # One budget for all the registry calls of a page: a slow registry costs seconds.
    return RegistryClient(registry, budget=settings.REGISTRY_PAGE_BUDGET)


def _page_size(request, default, largest):
    value = request.GET.get("n") or ""
    if value.isascii() and value.isdigit() and len(value) <= 4:
        return min(max(int(value), 1), largest)
    return default


def registry_list(request):
    registries = services.visible(request.user).prefetch_related("teams")
    return render(
        request,
        "registries/list.html",
        {"registries": registries, "is_admin": access.is_admin(request.user)},
    )


def registry_detail(request, pk):
    registry = access.get_or_404(request.user, Registry.objects.all(), pk=pk)
    return render(
        request,
        "registries/detail.html",
        {
            "registry": registry,
            "actions": services.allowed_actions(request.user, registry),
            "my_teams": _my_granted_teams(request.user, registry),
        },
    )


def _my_granted_teams(user, registry):
    """The user's teams that may use the registry (what a non-admin is told)."""
    teams = [m.team for m in user.memberships.select_related("team")]
    if registry.all_teams:
        return teams
    granted = set(registry.teams.values_list("pk", flat=True))
    return [t for t in teams if t.pk in granted]


@sensitive_post_parameters("password")  # kept out of error reports
def registry_edit(request, pk=None):
    registry = None
    if pk is not None:  # hidden → 404 before "not yours to edit" → 403
        registry = access.get_or_404(request.user, Registry.objects.all(), "manage", pk=pk)
    _admin_only(request)
    form = RegistryForm(request.POST or None, registry=registry)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            registry = services.save_registry(
                Actor.from_request(request),
                registry,
                name=data["name"],
                url=data["url"],
                username=data["username"],
                password=form.password_to_store(),
                teams=data["teams"],
                all_teams=data["all_teams"],
                tls_verify=data["tls_verify"],
                ca_cert=data["ca_cert"],
            )
        except services.RegistryInputError as exc:
            form.add_error(None, str(exc))
        else:
            ok, message = services.check_login(registry)
            if ok:
                messages.success(request, f"Registry {registry.name} saved. {message}")
            else:
                messages.warning(request, f"Registry {registry.name} saved, but: {message}")
            return redirect("registries:detail", pk=registry.pk)
    return render(request, "registries/edit.html", {"form": form, "registry": registry})


@require_POST
def registry_delete(request, pk):
    registry = access.get_or_404(request.user, Registry.objects.all(), "manage", pk=pk)
    services.delete_registry(Actor.from_request(request), registry)
    messages.success(
        request, f"Registry {registry.name} removed from the dashboard (its images are untouched)."
    )
    return redirect("registries:list")


@require_POST
def registry_test(request, pk):
    registry = access.get_or_404(request.user, Registry.objects.all(), "use", pk=pk)
    ok, message = services.check_login(registry)
    if request.htmx:
        context = {"ok": ok, "message": message, "registry": registry}
        return render(request, "registries/_test_result.html", context)
    (messages.success if ok else messages.error)(request, message)
    return redirect("registries:detail", pk=registry.pk)


def repositories(request, pk):
    registry = access.get_or_404(request.user, Registry.objects.all(), pk=pk)
    wanted = (request.GET.get("repository") or "").strip()
    if wanted:
        # Registries that do not list their catalog (Docker Hub, GitLab) are browsed by name.
        if valid_repository(wanted):
            return redirect("registries:tags", pk=registry.pk, repository=wanted)
        messages.error(request, "Not a repository name (lower case, e.g. team/app).")
    n = _page_size(request, CATALOG_PAGE, 100)
    last = request.GET.get("last") or ""
    if not valid_repository(last):
        last = ""  # junk is ignored: the first page
    page, error = None, ""
    try:
        with _client(registry) as client:
            page = client.catalog(n=n, last=last or None)
    except RegistryError as exc:
        error = exc.message
    names = [(name, valid_repository(name)) for name in (page.items if page else [])]
    next_url = ""
    if page and page.next_last and valid_repository(page.next_last):
        next_url = f"{request.path}?n={n}&last={page.next_last}"
    return render(
        request,
        "registries/repositories.html",
        {
            "registry": registry,
            "names": names,
            "error": error,
            "next_url": next_url,
            "paged": bool(last),
            "first_url": f"{request.path}?n={n}",
        },
    )


def tags(request, pk, repository):
    registry = access.get_or_404(request.user, Registry.objects.all(), pk=pk)
    if not valid_repository(repository):
        return render(
            request,
            "registries/tags.html",
            {"registry": registry, "repository": repository, "error": "No such repository name."},
            status=404,
        )
    n = _page_size(request, TAGS_PAGE, 50)
    last = request.GET.get("last") or ""
    if not valid_tag(last):
        last = ""
    infos, error, next_url = [], "", ""
    try:
        with _client(registry) as client:
            page = client.tags(repository, n=n, last=last or None)
            shown = [t for t in page.items if valid_tag(t)]
            with ThreadPoolExecutor(DETAIL_THREADS) as pool:
                infos = list(pool.map(lambda t: client.tag_info(repository, t), shown))
            by_digest = {}
            for info in infos:
                if info.digest:
                    by_digest.setdefault(info.digest, []).append(info.tag)
            for info in infos:
                info.shared_with = [t for t in by_digest.get(info.digest, []) if t != info.tag]
            if page.next_last and valid_tag(page.next_last):
                next_url = f"{request.path}?n={n}&last={page.next_last}"
    except RegistryError as exc:
        error = exc.message
    return render(
        request,
        "registries/tags.html",
        {
            "registry": registry,
            "repository": repository,
            "infos": infos,
            "error": error,
            "next_url": next_url,
            "paged": bool(last),
            "first_url": f"{request.path}?n={n}",
            "can_delete": access.can(request.user, registry, "delete_tag"),
            "can_use": access.can(request.user, registry, "use"),
        },
    )


@require_POST
def delete_tag(request, pk):
    registry = access.get_or_404(request.user, Registry.objects.all(), "delete_tag", pk=pk)
    repository = request.POST.get("repository") or ""
    tag = request.POST.get("tag") or ""
    digest = request.POST.get("digest") or ""
    if not valid_repository(repository) or not valid_tag(tag) or not DIGEST_RE.match(digest):
        return HttpResponseBadRequest("Give a repository name, a tag and the digest you saw.")
    job = services.request_delete_tag(
        Actor.from_request(request), registry, repository, tag, digest
    )
    messages.info(request, f"Deleting {repository}:{tag} from {registry.name}: follow the job.")
    return redirect(reverse("job", args=[job.pk]))
