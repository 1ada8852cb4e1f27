"""The API tokens page: each user makes, lists and revokes their own tokens; dashboard
admins see and revoke everyone's. The token text is shown once, in the answer to the
POST that made it, and is never stored."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from dashboard import access
from dashboard.audit import Actor

from . import tokens
from .forms import TokenForm


@never_cache
def token_list(request):
    form = TokenForm(request.user, request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            token, text = tokens.create_token(
                Actor.from_request(request),
                request.user,
                data["name"],
                days=data["days"],
                read_only=data["read_only"],
                team=data["team"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            created = {"token": token, "text": text}
            form = TokenForm(request.user)
    visible = tokens.visible_tokens(request.user)
    return render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "created": created,
            "mine": visible.filter(user=request.user),
            "others": visible.exclude(user=request.user) if access.is_admin(request.user) else [],
        },
        status=422 if request.method == "POST" and created is None else 200,
    )


@require_POST
def token_revoke(request, pk):
    # Someone else's token is "not found" for a non-admin, as anything hidden is.
    token = get_object_or_404(tokens.visible_tokens(request.user), pk=pk)
    if tokens.revoke_token(Actor.from_request(request), token):
        messages.success(request, f"Token {token.name} of {token.user} revoked.")
    else:
        messages.info(request, f"Token {token.name} was already revoked.")
    return redirect("api:tokens")
