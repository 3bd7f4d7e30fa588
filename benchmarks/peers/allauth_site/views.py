"""The allauth peer's endpoints: sign in with an Amazon access token, and the session check.

allauth 65 has no token login for Amazon, so this view does what its provider token
endpoints do for other providers: verify the token (tokeninfo: ``aud`` must be our client
id), then allauth's own Amazon adapter fetches the profile and ``complete_social_login``
finds or creates the user and logs them in.
"""

import json

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.helpers import complete_social_login
from allauth.socialaccount.models import SocialToken
from allauth.socialaccount.providers.amazon.views import AmazonOAuth2Adapter
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt


class EmulatedAmazonAdapter(AmazonOAuth2Adapter):
    profile_url = settings.EMULATOR_URL + "/user/profile"


@csrf_exempt
def amazon_token(request: HttpRequest) -> JsonResponse:
    token = json.loads(request.body)["access_token"]
    with get_adapter().get_requests_session() as http:
        info = http.get(
            settings.EMULATOR_URL + "/auth/o2/tokeninfo", params={"access_token": token}
        )
    if info.status_code != 200 or info.json().get("aud") != settings.CLIENT_ID:
        return JsonResponse({"error": "invalid_token"}, status=401)
    adapter = EmulatedAmazonAdapter(request)
    app = adapter.get_provider().app
    social_token = SocialToken(token=token)
    login = adapter.complete_login(request, app, social_token)
    login.token = social_token
    complete_social_login(request, login)
    if not request.user.is_authenticated:
        return JsonResponse({"error": "not_signed_in"}, status=403)
    return JsonResponse({"session": {"token": request.session.session_key}}, status=201)


def me(request: HttpRequest) -> JsonResponse:
    user = request.user
    if not user.is_authenticated:
        return JsonResponse({"error": "unauthorized"}, status=401)
    return JsonResponse(
        {"account": {"id": user.pk, "username": user.username, "email": user.email}}
    )
