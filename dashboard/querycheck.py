"""Refuse query strings no page can mean: NUL bytes, undecodable bytes, absurd sizes.

Pages validate each parameter they read (junk is ignored); this catches, in one
place, what would otherwise reach the database as a 500 (PostgreSQL refuses NUL
characters in strings) before any view runs.
"""

from django.http import HttpResponseBadRequest

MAX_VALUE = 2000


class QueryStringCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = request.META.get("QUERY_STRING", "")
        if raw:
            problem = self.problem(request)
            if problem:
                return HttpResponseBadRequest(f"Bad query string: {problem}.")
        return self.get_response(request)

    @staticmethod
    def problem(request):
        for key, values in request.GET.lists():
            for value in [key, *values]:
                if "\x00" in value:
                    return "it contains a NUL character"
                if "\ufffd" in value:
                    return "it is not valid UTF-8"
                if len(value) > MAX_VALUE:
                    return f"a value is longer than {MAX_VALUE} characters"
        return None
