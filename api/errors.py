"""Every API error is JSON: {"error": "one sentence a person can act on"}.

Validation errors keep their per-field detail under "fields". Engine failures are a
502 with the engine's message; a create policy refusal is a 400.
"""

import logging

from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from containers.policy import PolicyError
from dashboard.engine import EngineError

from .limits import PayloadTooLarge

log = logging.getLogger(__name__)

SENTENCES = {
    exceptions.NotAuthenticated: "Send an API token: Authorization: Bearer <token>.",
}


def _sentence(text):
    text = str(text).strip() or "The request failed."
    return text if text[-1] in ".!?" else text + "."


def _first_message(detail):
    """The first message in a (nested) ValidationError detail, with its field name."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            inner = _first_message(value)
            if field in ("non_field_errors", "__all__"):
                return inner
            return f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def handle(exc, context):
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, EngineError):
        return Response({"error": _sentence(exc.message)}, status=status.HTTP_502_BAD_GATEWAY)
    if isinstance(exc, PolicyError):
        return Response({"error": _sentence(exc.message)}, status=status.HTTP_400_BAD_REQUEST)
    response = exception_handler(exc, context)
    if response is None:
        log.exception("API request failed", exc_info=exc)
        return Response(
            {"error": "Internal error; the server's log has the details."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "error": _sentence(f"Invalid request: {_first_message(exc.detail)}"),
            "fields": exc.detail if isinstance(exc.detail, dict) else {"__all__": exc.detail},
        }
    elif isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        response.data = {
            "error": f"Too many requests with this token; try again in {wait} seconds."
        }
    else:
        detail = getattr(exc, "detail", None) or (exc.args[0] if exc.args else "")
        text = SENTENCES.get(type(exc)) or detail
        response.data = {"error": _sentence(text)}
    return response
