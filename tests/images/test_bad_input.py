"""Bad input gets a clear message and changes nothing: no job, no spool file, no image.

Malformed references and tags, uploads that are not archives or are too large, a
Dockerfile without FROM, contexts that try to leave themselves (`..`, absolute
paths, symlinks and hard links pointing out).
"""

import io
import os
import tarfile
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from dashboard.models import Job

DOCKERFILE = b"FROM dockyard-test/busybox:latest\nCOPY . /ctx\n"


def tar_of(entries):
    """entries: (name, kind, data) with kind f(ile), s(ymlink), h(ardlink), d(ir)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "f":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "d":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.type = tarfile.SYMTYPE if kind == "s" else tarfile.LNKTYPE
                info.linkname = data
                tar.addfile(info)
    return buf.getvalue()


def upload(data, name="context.tar"):
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


@pytest.fixture
def operator(cast, login, local_host, settings, tmp_path, no_task_queue):
    settings.IMAGE_SPOOL_DIR = tmp_path / "spool"
    return login(cast.operator)


def _build(client, host, team, **data):
    form = {"host": host.pk, "team": team.pk, "tag": "dyimg-bad/app:1", **data}
    return client.post(reverse("images:build"), form)


def _nothing_happened(settings):
    assert not Job.objects.exists()
    spool = settings.IMAGE_SPOOL_DIR
    assert not os.path.exists(spool) or os.listdir(spool) == []


@pytest.mark.parametrize(
    "reference,message",
    [
        ("Upper", "must be lowercase"),
        ("a//b:1", "not a valid image reference"),
        ("app:-bad", "not a valid image reference"),
        ("app:" + "x" * 200, "not a valid image reference"),
        ("has space:1", "no spaces"),
        ("a" * 64, "image id, not a name"),
        ("app@sha256:123", "not a valid image reference"),
    ],
)
def test_malformed_references_are_refused(operator, cast, local_host, settings, reference, message):
    response = operator.post(
        reverse("images:pull"),
        {"host": local_host.pk, "team": cast.alpha.pk, "reference": reference},
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    _nothing_happened(settings)


@pytest.mark.parametrize("tag", ["bad tag", "UPPER:1", "x:.dot", "x@sha256:" + "a" * 64, ""])
def test_malformed_build_tags_are_refused(operator, cast, local_host, settings, tag):
    response = _build(
        operator, local_host, cast.alpha, tag=tag, dockerfile_text=DOCKERFILE.decode()
    )
    assert response.status_code == 422
    _nothing_happened(settings)


def test_malformed_pull_tag_from_a_registry_is_refused(
    operator, cast, local_host, registry, settings
):
    response = operator.post(
        reverse("images:pull"),
        {
            "host": local_host.pk,
            "team": cast.alpha.pk,
            "registry": registry.pk,
            "repository": "team/app",
            "tag": "-nope",
        },
    )
    assert response.status_code == 422
    assert "is not a valid tag" in response.content.decode()
    _nothing_happened(settings)


def test_dockerfile_without_from_is_refused(operator, cast, local_host, settings):
    response = _build(operator, local_host, cast.alpha, dockerfile_text="RUN echo hi\n")
    assert response.status_code == 422
    assert "no FROM instruction" in response.content.decode()
    _nothing_happened(settings)


def test_upload_that_is_not_an_archive_is_refused(operator, cast, local_host, settings):
    response = _build(
        operator, local_host, cast.alpha, context=upload(b"just some text\n" * 100, "ctx.tar")
    )
    assert response.status_code == 422
    assert "neither a tar archive" in response.content.decode()
    _nothing_happened(settings)


def test_upload_over_the_limit_is_refused(operator, cast, local_host, settings):
    settings.IMAGE_BUILD_MAX_BYTES = 10_000
    data = tar_of([("Dockerfile", "f", DOCKERFILE), ("big", "f", b"x" * 20_000)])
    response = _build(operator, local_host, cast.alpha, context=upload(data))
    assert response.status_code == 422
    assert "larger than the limit" in response.content.decode()
    _nothing_happened(settings)


def test_small_upload_that_inflates_over_the_limit_is_refused(operator, cast, local_host, settings):
    settings.IMAGE_BUILD_MAX_BYTES = 50_000
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Dockerfile", DOCKERFILE)
        archive.writestr("zeros", b"\0" * 5_000_000)
    assert len(buf.getvalue()) < 50_000
    response = _build(operator, local_host, cast.alpha, context=upload(buf.getvalue(), "c.zip"))
    assert response.status_code == 422
    assert "larger than the limit" in response.content.decode()
    _nothing_happened(settings)


@pytest.mark.parametrize(
    "entries,message",
    [
        ([("../outside", "f", b"x")], "contains &#x27;..&#x27;"),
        ([("sub/../../outside", "f", b"x")], "contains &#x27;..&#x27;"),
        ([("/etc/cron.d/evil", "f", b"x")], "absolute path"),
        ([("passwd", "s", "/etc/passwd")], "points out of the context"),
        ([("sub/up", "s", "../../etc")], "points out of the context"),
        ([("shadow", "h", "/etc/shadow")], "absolute path"),
        ([("copy", "h", "../x")], "contains &#x27;..&#x27;"),
        ([("copy", "h", "not-in-archive")], "not a file earlier in the archive"),
        ([("sub/up", "s", ".."), ("x", "s", "sub/up/..")], "through another symlink"),
    ],
)
def test_context_entries_leaving_the_context_are_refused(
    operator, cast, local_host, settings, entries, message
):
    data = tar_of([("Dockerfile", "f", DOCKERFILE), *entries])
    response = _build(operator, local_host, cast.alpha, context=upload(data))
    assert response.status_code == 422
    assert message in response.content.decode()
    _nothing_happened(settings)


def test_zip_symlink_out_of_the_context_is_refused(operator, cast, local_host, settings):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("Dockerfile", DOCKERFILE)
        link = zipfile.ZipInfo("etc")
        link.external_attr = 0o120777 << 16  # a symlink, as `zip --symlinks` stores it
        archive.writestr(link, "/etc")
    response = _build(operator, local_host, cast.alpha, context=upload(buf.getvalue(), "c.zip"))
    assert response.status_code == 422
    assert "points out of the context" in response.content.decode()
    _nothing_happened(settings)


def test_context_without_its_dockerfile_is_refused(operator, cast, local_host, settings):
    data = tar_of([("app.py", "f", b"print(1)\n")])
    response = _build(operator, local_host, cast.alpha, context=upload(data))
    assert response.status_code == 422
    assert "There is no Dockerfile" in response.content.decode()
    _nothing_happened(settings)


def test_bad_build_arguments_and_target_are_refused(operator, cast, local_host, settings):
    response = _build(
        operator,
        local_host,
        cast.alpha,
        dockerfile_text=DOCKERFILE.decode(),
        build_args="no equals sign",
    )
    assert response.status_code == 422 and "is not NAME=value" in response.content.decode()
    response = _build(
        operator, local_host, cast.alpha, dockerfile_text=DOCKERFILE.decode(), target="nope"
    )
    assert response.status_code == 422 and "no stage named" in response.content.decode()
    _nothing_happened(settings)


def test_import_of_something_not_made_by_docker_save_is_refused(
    operator, cast, local_host, settings
):
    for data, message in [
        (b"not a tar at all" * 50, "not a tar archive made by"),
        (tar_of([("hello.txt", "f", b"hi")]), "no manifest.json"),
    ]:
        response = operator.post(
            reverse("images:import"),
            {"host": local_host.pk, "team": cast.alpha.pk, "archive": upload(data)},
        )
        assert response.status_code == 422
        assert message in response.content.decode()
    _nothing_happened(settings)


def test_import_over_the_limit_is_refused(operator, cast, local_host, settings):
    settings.IMAGE_IMPORT_MAX_BYTES = 1000
    data = tar_of([("manifest.json", "f", b"[]"), ("x", "f", b"x" * 5000)])
    response = operator.post(
        reverse("images:import"),
        {"host": local_host.pk, "team": cast.alpha.pk, "archive": upload(data)},
    )
    assert response.status_code == 422
    assert "larger than the limit" in response.content.decode()
    _nothing_happened(settings)


def test_building_on_another_teams_private_image_is_refused(
    operator, cast, local_host, alpha_image, settings
):
    # alpha's image, not shared: beta's operator may not build FROM it.
    from images.models import Image

    Image.objects.filter(pk=alpha_image.pk).update(team=cast.beta)
    response = _build(
        operator, local_host, cast.alpha, dockerfile_text=f"FROM {alpha_image.tags[0]}\n"
    )
    assert response.status_code == 422
    assert "not your team" in response.content.decode()
    response = _build(
        operator,
        local_host,
        cast.alpha,
        dockerfile_text=f"FROM scratch AS s\nCOPY --from={alpha_image.tags[0]} /id /id\n",
    )
    assert response.status_code == 422
    _nothing_happened(settings)


def test_import_with_two_manifests_is_refused(operator, cast, local_host, settings):
    # The engine would obey the last manifest; the check must not read only the first.
    data = tar_of(
        [
            ("manifest.json", "f", b'[{"RepoTags": ["harmless:1"]}]'),
            ("./manifest.json", "f", b'[{"RepoTags": ["someone/else:latest"]}]'),
        ]
    )
    response = operator.post(
        reverse("images:import"),
        {"host": local_host.pk, "team": cast.alpha.pk, "archive": upload(data)},
    )
    assert response.status_code == 422
    assert "manifest.json is not one plain file" in response.content.decode()
    _nothing_happened(settings)


def test_spool_clean_up_keeps_uploads_of_waiting_jobs(cast, local_host, settings, tmp_path):
    import time

    from dashboard.models import Job
    from images.tasks import clean_spool

    settings.IMAGE_SPOOL_DIR = tmp_path
    old, waiting = tmp_path / ("a" * 32 + ".tar"), tmp_path / ("b" * 32 + ".tar")
    for path in (old, waiting):
        path.write_bytes(b"x")
        os.utime(path, (time.time() - 2 * 86400,) * 2)
    Job.objects.create(kind="image.build", params={"spool": "b" * 32})

    assert clean_spool() == 1
    assert not old.exists() and waiting.exists()
