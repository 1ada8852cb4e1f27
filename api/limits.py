"""Limits: per-token rate, page size, request body size."""

import json
import logging

from django.conf import settings
from django.core.cache import caches
from rest_framework import exceptions, pagination, parsers, throttling

log = logging.getLogger(__name__)


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """API_RATE_LIMIT requests per token (e.g. "600/min"), counted in the "api" cache
    (Redis: shared by every web process). Sessions are not counted: they are people
    on the pages, which have no limit either. A refusal is a 429 with Retry-After."""

    scope = "api_token"

    def __init__(self):
        self.cache = caches[settings.API_THROTTLE_CACHE]
        super().__init__()

    def get_rate(self):
        return settings.API_RATE_LIMIT

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # Redis down: reads keep working; the limit is back with it
            log.warning("API rate limit not checked: its cache is unreachable", exc_info=True)
            return True

    def get_cache_key(self, request, view):
        token = request.auth
        prefix = getattr(token, "prefix", None)
        if not prefix:
            return None
        return self.cache_format % {"scope": self.scope, "ident": prefix}


class Pagination(pagination.PageNumberPagination):
    """?page=N&page_size=M (M at most API_MAX_PAGE_SIZE) on every list."""

    page_size_query_param = "page_size"
    invalid_page_message = "No page {page_number}: {message}; pages are numbered from 1"

    @property
    def page_size(self):
        return settings.API_PAGE_SIZE

    @property
    def max_page_size(self):
        return settings.API_MAX_PAGE_SIZE


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "payload_too_large"

    def __init__(self):
        super().__init__(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; "
            "send less."
        )


def check_body_size(request, limit=None):
    """Refuse a declared body over `limit` (default DATA_UPLOAD_MAX_MEMORY_SIZE) before
    anything reads it."""
    limit = limit or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise exceptions.ParseError("The Content-Length header is not a number.") from None
    if limit is not None and length > limit:
        raise PayloadTooLarge()


class LimitedJSONParser(parsers.JSONParser):
    """JSON bodies, read at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (chunked bodies carry
    no length to check first), as an object."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge()
        try:
            data = json.loads(raw.decode("utf-8")) if raw else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"The body is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise exceptions.ParseError("The body must be a JSON object.")
        return data
