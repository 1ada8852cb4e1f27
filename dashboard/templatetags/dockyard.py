"""Template filters for showing engine and audit data compactly."""

import json

from django import template

register = template.Library()


@register.filter
def params(value):
    """Audit parameters as `key=value` pairs; nested values as compact JSON."""
    if not isinstance(value, dict):
        return value
    parts = []
    for key, item in value.items():
        if item in (None, "", [], {}):
            continue
        if isinstance(item, str):
            text = item
        else:
            text = json.dumps(item, separators=(",", ":"), ensure_ascii=False)
        parts.append(f"{key}={text}")
    return ", ".join(parts)
