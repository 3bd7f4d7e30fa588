"""The social-auth peer: ``do_auth`` with an Amazon access token (social-core's documented
way to sign in with a token a client already has), then Django's ``login``."""

import json

from django.contrib.auth import login
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from social_django.utils import psa


@csrf_exempt
@psa()
def amazon_token(request: HttpRequest, backend: str) -> JsonResponse:
    token = json.loads(request.body)["access_token"]
    try:
        user = request.backend.do_auth(token)  # type: ignore[attr-defined]
    except Exception:  # requests' HTTPError for a refused token, as social-core raises it
        return JsonResponse({"error": "invalid_token"}, status=401)
    if user is None or not user.is_active:
        return JsonResponse({"error": "not_signed_in"}, status=403)
    login(request, user)
    return JsonResponse({"session": {"token": request.session.session_key}}, status=201)


def me(request: HttpRequest) -> JsonResponse:
    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"error": "unauthorized"}, status=401)
    return JsonResponse(
        {"account": {"id": user.pk, "username": user.username, "email": user.email}}
    )
