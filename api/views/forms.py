"""From a JSON body to the pages' forms, so the API validates with the very same code."""

from django.http import QueryDict
from rest_framework import serializers


def query_id(params, name):
    """A positive database id from the query string, or None (junk is ignored)."""
    value = params.get(name) or ""
    if value.isascii() and value.isdigit() and 0 < len(value) <= 18:
        return int(value)
    return None


def _text(value):
    if isinstance(value, dict):
        return "\n".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def form_data(data, form, admin_only=()):
    """Form values for `form` (an unbound instance, for this user) from a JSON object.

    Lists become lines and {"K": "v"} K=v lines; true ticks a checkbox, false and null
    leave a field out; a field left out gets the form's initial value, as the page
    would post it. {"host": "local"} names a choice: looked up only among the choices
    the form offers this user, so nothing hidden can be found. A key the form does
    not have is a 400 (a typo must not be silently dropped), with its own words for
    an option this user's form leaves out (`admin_only`).
    """
    unknown = {}
    for key in data:
        if key not in form.fields:
            unknown[key] = [
                "Only dashboard admins may use this option."
                if key in admin_only
                else "Not a field of this request."
            ]
    if unknown:
        raise serializers.ValidationError(unknown)
    out = {}
    for name, field in form.fields.items():
        value = data.get(name)
        if isinstance(value, bool):
            if value:
                out[name] = "on"
        elif value is not None:
            out[name] = _text(value)
        elif field.initial is not None and not isinstance(field.initial, bool):
            out[name] = str(field.initial)
        queryset = getattr(field, "queryset", None)
        if queryset is not None and out.get(name) and not out[name].isdigit():
            pk = queryset.filter(name=out[name]).values_list("pk", flat=True).first()
            if pk is not None:
                out[name] = str(pk)
    posted = QueryDict(mutable=True)  # what the forms read raw data from, as from a page
    posted.update(out)
    return posted
