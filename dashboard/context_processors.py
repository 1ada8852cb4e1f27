from . import access


def nav(request):
    user = getattr(request, "user", None)
    return {"nav_is_admin": bool(user and access.is_admin(user))}
