"""EMAIL_URL → Django's EMAIL_* settings (read by dashboard/settings.py; no Django imports).

django-environ parses the URL; its query options (`?tls=True&timeout=20`) land in
OPTIONS, which Django's SMTP backend ignores, so they are mapped here, strictly: an
unknown option or a non-boolean `tls` refuses to start rather than send in clear.
"""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_BOOL = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False,
         "no": False, "off": False}  # fmt: skip


def email_settings(env, name="EMAIL_URL"):
    raw = env.str(name, default="")
    if not raw:
        # Not configured: emails are written to the worker's log, and the monitoring
        # page says so.
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    try:
        config = env.email_url_config(raw)
    except Exception as exc:
        raise ImproperlyConfigured(f"{name} is not a valid email URL: {exc}") from None
    if "EMAIL_BACKEND" not in config or not urlsplit(raw).scheme:
        raise ImproperlyConfigured(f"{name} must look like smtp://user:pass@host:587/?tls=True")
    out = {k: v for k, v in config.items() if k != "OPTIONS" and v not in (None, "")}
    for key, value in (config.get("OPTIONS") or {}).items():
        k = key.lower()
        if k in ("tls", "ssl"):
            flag = _BOOL.get(str(value).strip().lower())
            if flag is None:
                raise ImproperlyConfigured(f"{name}: {key} must be true or false, got {value!r}")
            out[f"EMAIL_USE_{k.upper()}"] = flag
        elif k == "timeout":
            try:
                out["EMAIL_TIMEOUT"] = float(value)
            except ValueError:
                raise ImproperlyConfigured(f"{name}: timeout must be seconds, got {value!r}")
        else:
            raise ImproperlyConfigured(f"{name}: unknown option {key!r} (tls, ssl, timeout)")
    if out.get("EMAIL_USE_TLS") and out.get("EMAIL_USE_SSL"):
        raise ImproperlyConfigured(f"{name}: choose tls (STARTTLS) or ssl, not both")
    out.setdefault("EMAIL_TIMEOUT", 20.0)
    return out
