"""What a registry says about images: media types, the name grammar, and the
shapes the pages show (a tag's digest, size, date and platforms), with the small
parsers that read them out of manifests and image configurations.

No I/O here: `client.RegistryClient` fetches, this module reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
)
IMAGE_MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_LIST, OCI_INDEX)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST, *SCHEMA1))

# Distribution's grammar (reference/regexp.go): path components of lower-case
# alphanumerics with separators, and tags of word characters, dots and dashes.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 8 * 1024 * 1024
MAX_PLATFORMS = 8  # children of an index we look into per tag


def valid_repository(name):
    return isinstance(name, str) and len(name) <= 255 and bool(REPOSITORY_RE.match(name))


def valid_tag(tag):
    return isinstance(tag, str) and bool(TAG_RE.match(tag))


@dataclass
class Platform:
    os: str = ""
    architecture: str = ""
    variant: str = ""
    digest: str = ""
    size: int | None = None
    created: datetime | None = None

    @property
    def label(self):
        parts = [p for p in (self.os, self.architecture, self.variant) if p]
        return "/".join(parts) or "unknown"


@dataclass
class TagInfo:
    """One tag as the registry describes it: digest, kind of manifest, size, creation."""

    tag: str
    digest: str = ""
    media_type: str = ""
    size: int | None = None  # config + layers, compressed, as pushed
    created: datetime | None = None
    platforms: list[Platform] = field(default_factory=list)
    error: str = ""
    # Other tags on the same page with the same digest: deleting one deletes them too.
    shared_with: list[str] = field(default_factory=list)

    @property
    def is_index(self):
        return self.media_type in INDEXES

    @property
    def kind(self):
        if self.media_type in INDEXES:
            return "multi-platform"
        if self.media_type in SCHEMA1:
            return "schema 1"
        if self.media_type == OCI_MANIFEST:
            return "OCI image"
        if self.media_type == DOCKER_MANIFEST:
            return "image"
        return self.media_type or "unknown"


@dataclass
class Page:
    items: list
    next_last: str | None  # pass as `last` for the next page, None when this is the last


def parse_time(value):
    if not isinstance(value, str) or not value:
        return None
    # Go writes nanoseconds; Python reads at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def non_negative_int(value):
    return value if isinstance(value, int) and value >= 0 else 0


def schema1_created(body):
    history = body.get("history")
    if isinstance(history, list) and history and isinstance(history[0], dict):
        try:
            return parse_time(json.loads(history[0].get("v1Compatibility") or "{}").get("created"))
        except (ValueError, AttributeError):
            return None
    return None
