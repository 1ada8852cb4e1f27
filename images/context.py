"""Build contexts made from what the user sent, and nothing else.

A context is re-packed entry by entry from the uploaded tar or zip (or made from
the Dockerfile typed in the editor) into a fresh tar the dashboard writes itself:
no path on the server is ever read, entries are never extracted to disk, and an
entry that would point out of the context (absolute path, `..`, a symlink or hard
link leaving it, a device) refuses the whole upload. The Dockerfile must be in
the context and have a FROM. Sizes are bounded before and while reading, so a
small zip that inflates to gigabytes is refused too.
"""

import io
import posixpath
import stat
import tarfile
import time
import zipfile
import zlib

from dockerfile_parse import DockerfileParser

MAX_ENTRIES = 20_000
MAX_DOCKERFILE_BYTES = 1_000_000
CHUNK = 1 << 16


class ContextError(ValueError):
    """An upload or Dockerfile refused, with the reason an operator can act on."""


def clean_name(name, what="entry"):
    """A relative, normalised path inside the context, or ContextError."""
    raw = name
    if "\x00" in name or "\\" in name:
        raise ContextError(f"The archive {what} {raw!r} has a backslash or NUL in its name.")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ContextError(f"The archive {what} {raw!r} has an absolute path; refused.")
    if ".." in name.split("/"):
        raise ContextError(f"The archive {what} {raw!r} contains '..'; refused.")
    name = posixpath.normpath(name)
    if name in (".", ""):
        return ""
    return name


def _inside(base_dir, target):
    """Where a link at `base_dir/...` pointing to `target` lands, or None if outside."""
    if target.startswith("/"):
        return None
    joined = posixpath.normpath(posixpath.join(base_dir, target))
    if joined == ".." or joined.startswith("../"):
        return None
    return "" if joined == "." else joined


class _Writer:
    """Writes clean entries into the output tar, counting bytes against the limit."""

    def __init__(self, out, max_bytes):
        self.tar = tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT)
        self.max_bytes = max_bytes
        self.total = 0
        self.count = 0
        self.files = {}  # name → kind ("file", "dir", "link")
        self.dockerfile = {}

    def _info(self, name, kind, mode, mtime):
        self.count += 1
        if self.count > MAX_ENTRIES:
            raise ContextError(f"The archive has more than {MAX_ENTRIES} entries; refused.")
        if name in self.files and kind != "dir":
            raise ContextError(f"The archive has {name!r} twice; refused.")
        info = tarfile.TarInfo(name)
        info.mode = (mode & 0o777) or (0o755 if kind == "dir" else 0o644)
        info.mtime = int(mtime or time.time())
        info.uid = info.gid = 0
        return info

    def add_dir(self, name, mode=0o755, mtime=None):
        if not name or self.files.get(name) == "dir":
            return
        info = self._info(name, "dir", mode, mtime)
        info.type = tarfile.DIRTYPE
        self.tar.addfile(info)
        self.files[name] = "dir"

    def add_file(self, name, src, size, mode=0o644, mtime=None):
        if not name:
            raise ContextError("The archive has a file with an empty name; refused.")
        self._room(size)
        info = self._info(name, "file", mode, mtime)
        info.size = size
        counted = _Counted(src, size)
        self.tar.addfile(info, counted)
        self.files[name] = "file"
        if posixpath.basename(name).lower().startswith("dockerfile") or name.endswith(
            ".dockerfile"
        ):
            self.dockerfile[name] = counted.head

    def add_symlink(self, name, target, mode=0o777, mtime=None):
        if _inside(posixpath.dirname(name), target) is None:
            raise ContextError(
                f"The archive's symlink {name!r} points out of the context ({target!r}); refused."
            )
        if self._through_link(name, target):
            raise ContextError(
                f"The archive's symlink {name!r} points through another symlink ({target!r}); "
                "links to links are refused, since where they lead cannot be checked."
            )
        info = self._info(name, "link", mode, mtime)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        self.tar.addfile(info)
        self.files[name] = "link"

    def _through_link(self, name, target):
        """Does the target pass through another symlink of the archive? Its lexical
        check would not see where that one leads (`a -> sub/up`, `up -> ..`, `x -> a/..`)."""
        current = posixpath.dirname(name)
        for part in target.split("/"):
            if part in ("", "."):
                continue
            current = posixpath.dirname(current) if part == ".." else posixpath.join(current, part)
            if self.files.get(current) == "link" and part != target.split("/")[-1]:
                return True
        return False

    def add_hardlink(self, name, target, mtime=None):
        target_clean = clean_name(target, "hard link target")
        if self.files.get(target_clean) != "file":
            raise ContextError(
                f"The archive's hard link {name!r} points to {target!r}, which is not a file "
                "earlier in the archive; refused."
            )
        info = self._info(name, "link", 0o644, mtime)
        info.type = tarfile.LNKTYPE
        info.linkname = target_clean
        self.tar.addfile(info)
        self.files[name] = "file"

    def _room(self, size):
        self.total += size
        if self.total > self.max_bytes:
            raise ContextError(
                f"The context is larger than the limit of {_mb(self.max_bytes)} once unpacked; "
                "refused."
            )

    def close(self):
        self.tar.close()


class _Counted:
    """Reads exactly `size` bytes from `src`; keeps the first bytes (for the Dockerfile)."""

    def __init__(self, src, size):
        self.src, self.left = src, size
        self.head = b""

    def read(self, n=-1):
        if self.left <= 0:
            return b""
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.src.read(n)
        if len(data) < n and len(data) == 0:
            raise ContextError("The archive ends in the middle of a file; refused.")
        self.left -= len(data)
        if len(self.head) < MAX_DOCKERFILE_BYTES:
            self.head += data[: MAX_DOCKERFILE_BYTES - len(self.head)]
        return data


def _mb(n):
    return f"{n / 1_000_000:.0f} MB" if n >= 1_000_000 else f"{n} bytes"


def _parents(writer, name, mtime=None):
    parent = posixpath.dirname(name)
    todo = []
    while parent and writer.files.get(parent) != "dir":
        if writer.files.get(parent):
            raise ContextError(f"The archive puts {name!r} under a file or link; refused.")
        todo.append(parent)
        parent = posixpath.dirname(parent)
    for p in reversed(todo):
        writer.add_dir(p, mtime=mtime)


def _from_tar(upload, writer):
    try:
        archive = tarfile.open(fileobj=upload, mode="r:*")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ContextError(f"The upload could not be read as a tar archive: {exc}") from None
    try:
        for member in archive:
            name = clean_name(member.name)
            if not name:
                continue
            _parents(writer, name, member.mtime)
            if member.isdir():
                writer.add_dir(name, member.mode, member.mtime)
            elif member.isreg():
                writer.add_file(
                    name, archive.extractfile(member), member.size, member.mode, member.mtime
                )
            elif member.issym():
                writer.add_symlink(name, member.linkname, member.mode, member.mtime)
            elif member.islnk():
                writer.add_hardlink(name, member.linkname, member.mtime)
            else:
                raise ContextError(
                    f"The archive entry {member.name!r} is a device or pipe; refused."
                )
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise ContextError(f"The tar archive is damaged: {exc}") from None
    finally:
        archive.close()


def _from_zip(upload, writer):
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ContextError(f"The upload could not be read as a zip archive: {exc}") from None
    with archive:
        for info in archive.infolist():
            name = clean_name(info.filename.rstrip("/") if info.is_dir() else info.filename)
            if not name:
                continue
            mtime = time.mktime((*info.date_time, 0, 0, -1))
            mode = info.external_attr >> 16
            _parents(writer, name, mtime)
            if info.is_dir():
                writer.add_dir(name, mode, mtime)
            elif stat.S_ISLNK(mode):
                if info.file_size > 4096:
                    raise ContextError(f"The zip's symlink {name!r} is not a link; refused.")
                with archive.open(info) as fh:
                    target = fh.read(4097).decode("utf-8", "replace")
                writer.add_symlink(name, target, 0o777, mtime)
            elif stat.S_IFMT(mode) in (0, stat.S_IFREG):
                try:
                    with archive.open(info) as fh:
                        writer.add_file(name, fh, info.file_size, mode, mtime)
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise ContextError(f"The zip archive is damaged: {exc}") from None
            else:
                raise ContextError(f"The zip entry {name!r} is a device or pipe; refused.")


def kind_of(upload):
    """ "zip", "tar" or None, from the bytes (never the file name)."""
    upload.seek(0)
    if zipfile.is_zipfile(upload):
        upload.seek(0)
        return "zip"
    upload.seek(0)
    try:
        with tarfile.open(fileobj=upload, mode="r:*") as archive:
            archive.next()
        return "tar"
    except (tarfile.TarError, EOFError, OSError, zlib.error):
        return None
    finally:
        upload.seek(0)


def from_upload(upload, out, *, dockerfile="Dockerfile", max_bytes, build_args=None):
    """Re-pack an uploaded tar/zip into `out` (a writable binary file).

    Returns the parsed Dockerfile (`Dockerfile`); raises ContextError.
    """
    dockerfile = clean_name(dockerfile or "Dockerfile", "Dockerfile path")
    if not dockerfile:
        raise ContextError("Name the Dockerfile inside the context, e.g. Dockerfile.")
    kind = kind_of(upload)
    if kind is None:
        raise ContextError(
            "The upload is neither a tar archive (.tar, .tar.gz, .tgz …) nor a zip archive; "
            "pack the build context with `tar -cf context.tar .` or as a .zip."
        )
    writer = _Writer(out, max_bytes)
    try:
        (_from_zip if kind == "zip" else _from_tar)(upload, writer)
    finally:
        writer.close()
    if dockerfile not in writer.dockerfile:
        if writer.files.get(dockerfile) == "link":
            raise ContextError(f"{dockerfile} is a link; put the Dockerfile itself in the context.")
        raise ContextError(f"There is no {dockerfile} at the top of the uploaded context.")
    return parse_dockerfile(writer.dockerfile[dockerfile], build_args)


def from_dockerfile(text, out, *, build_args=None):
    """A context holding only the typed Dockerfile. Returns the parsed `Dockerfile`."""
    data = (text or "").replace("\r\n", "\n").encode()
    parsed = parse_dockerfile(data, build_args)
    writer = _Writer(out, len(data) + 1)
    writer.add_file("Dockerfile", io.BytesIO(data), len(data))
    writer.close()
    return parsed


class Dockerfile:
    """What the dashboard needs from a Dockerfile: its stages and the images it builds on."""

    def __init__(self, base_images, stages):
        self.base_images = base_images
        self.stages = stages


def parse_dockerfile(data, build_args=None):
    if len(data) >= MAX_DOCKERFILE_BYTES:
        raise ContextError("The Dockerfile is larger than 1 MB; refused.")
    if not data.strip():
        raise ContextError("The Dockerfile is empty.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ContextError("The Dockerfile is not UTF-8 text.") from None
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()), build_args=build_args or {})
    structure = parser.structure
    froms = [s for s in structure if s["instruction"] == "FROM"]
    if not froms:
        raise ContextError(
            "The Dockerfile has no FROM instruction: every build starts FROM an image."
        )
    stages = set()
    for s in froms:
        words = s["value"].split()
        if len(words) >= 3 and words[-2].lower() == "as":
            stages.add(words[-1].lower())
    bases = []
    for image in parser.parent_images:
        if image and image.lower() not in stages and image != "scratch" and image not in bases:
            bases.append(image)
    for s in structure:
        if s["instruction"] in ("COPY", "ADD"):
            for word in s["value"].split():
                if word.startswith("--from="):
                    src = word[len("--from=") :]
                    if src.lower() not in stages and not src.isdigit() and src not in bases:
                        bases.append(src)
    return Dockerfile(bases, stages)
