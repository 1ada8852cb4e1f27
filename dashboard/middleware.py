"""Forwarded headers only from trusted proxies; Secure cookies on HTTPS requests.

See DASHBOARD_TRUSTED_PROXIES and DASHBOARD_HTTPS in dashboard/settings.py.
"""

import functools
import ipaddress

from django.conf import settings

# What a client could forge to pose as another address or as an HTTPS request.
FORWARDED_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
)


@functools.cache
def _networks(cidrs):
    return tuple(ipaddress.ip_network(c) for c in cidrs)


def parse_ip(text):
    """An ip_address (IPv4-mapped IPv6 unwrapped), or None for anything else."""
    try:
        ip = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    return getattr(ip, "ipv4_mapped", None) or ip


def is_trusted_proxy(ip):
    """Is this address (text or ip_address) one of DASHBOARD_TRUSTED_PROXIES' networks?"""
    if isinstance(ip, str):
        ip = parse_ip(ip)
    if ip is None:
        return False
    return any(ip.version == n.version and ip in n for n in _networks(settings.TRUSTED_PROXIES))


class TrustedProxyMiddleware:
    """With trusted proxies listed by address, a request from any other peer loses its
    forwarded headers, so neither SECURE_PROXY_SSL_HEADER nor client_ip believes them.

    Without DASHBOARD_TRUSTED_PROXIES nothing reads them (client_ip takes REMOTE_ADDR,
    SECURE_PROXY_SSL_HEADER is unset); with a proxy count the peer cannot be checked.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.TRUSTED_PROXIES and not is_trusted_proxy(request.META.get("REMOTE_ADDR")):
            for header in FORWARDED_HEADERS:
                request.META.pop(header, None)
        return self.get_response(request)


class SecureCookiesOverHttpsMiddleware:
    """Mark the session and CSRF cookies Secure on responses to HTTPS requests.

    With DASHBOARD_HTTPS they always are (SESSION_COOKIE_SECURE, CSRF_COOKIE_SECURE);
    without it the dashboard must keep working over plain HTTP on loopback, where a
    Secure cookie would never come back, but a request that did arrive over HTTPS
    (request.is_secure()) still gets cookies that will not leak over HTTP later.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.is_secure():
            for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
                if name in response.cookies:
                    response.cookies[name]["secure"] = True
        return response
