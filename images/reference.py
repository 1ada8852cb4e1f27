"""Image references checked with the grammar Docker's distribution uses.

`docker_image.reference` is a port of distribution/reference: a reference is
`[domain[:port]/]path[:tag][@digest]`, lowercase path components, a tag of at most
128 characters. Anything else is refused before a job is queued, with a message
that says what is wrong.
"""

import re
from dataclasses import dataclass

from docker_image import reference as grammar

TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DEFAULT_DOMAIN = "docker.io"


class BadReference(ValueError):
    """A reference or tag that does not follow Docker's grammar."""


@dataclass(frozen=True)
class Reference:
    domain: str  # "" for Docker Hub (no domain given)
    path: str
    tag: str
    digest: str

    @property
    def repository(self):
        """What `docker pull` takes as the repository (domain included)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def registry(self):
        return self.domain or DEFAULT_DOMAIN

    def __str__(self):
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def pull_tag(self):
        """The tag or digest argument of the pull API (digest wins, default `latest`)."""
        return self.digest or self.tag or "latest"

    @property
    def tagged(self):
        """`repository:tag`, with `latest` when no tag was given (never a digest)."""
        return f"{self.repository}:{self.tag or 'latest'}"


def parse(text, *, allow_digest=True):
    """A `Reference` from user input, or BadReference saying why not."""
    text = (text or "").strip()
    if not text:
        raise BadReference("Give an image reference, e.g. registry.example.com/team/app:1.0.")
    if len(text) > 512 or not text.isascii() or any(c.isspace() for c in text):
        raise BadReference(f"{_show(text)} is not an image reference: no spaces, ASCII only.")
    try:
        ref = grammar.Reference.parse(text)
    except grammar.NameTooLong:
        raise BadReference("Repository names are at most 255 characters long.") from None
    except grammar.NameContainsUppercase:
        raise BadReference(f"{_show(text)}: repository names must be lowercase.") from None
    except grammar.ReferenceInvalidFormat:
        raise BadReference(
            f"{_show(text)} is not a valid image reference "
            "([registry[:port]/]name[:tag][@digest]; lowercase name, tag of letters, "
            "digits, '_', '.', '-')."
        ) from None
    except Exception as exc:  # the parser's other refusals (digest format, …)
        raise BadReference(f"{_show(text)} is not a valid image reference: {exc}") from None
    domain, path = ref.split_hostname()
    if re.fullmatch(r"[a-f0-9]{64}", path):
        raise BadReference("A 64-character hexadecimal string is an image id, not a name.")
    if ref["digest"] and not allow_digest:
        raise BadReference("A digest cannot be given here; use a tag.")
    return Reference(domain or "", path, ref["tag"] or "", ref["digest"] or "")


def check_tag(tag):
    """A tag (the part after ':'), or BadReference."""
    tag = (tag or "").strip()
    if not TAG_RE.match(tag):
        raise BadReference(
            f"{_show(tag)} is not a valid tag: up to 128 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'."
        )
    return tag


def _show(text):
    return repr(text[:80] + ("…" if len(text) > 80 else ""))
