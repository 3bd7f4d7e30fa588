"""The sans-I/O protocol: request building and parsing of every shape in lwa-protocol.md."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwa_accounts.core.models import CodePair, OAuthErrorReply
from lwa_accounts.errors import AmazonUnavailable
from lwa_accounts.lwa import protocol
from lwa_accounts.settings import Settings

USER_ID = "amzn1.account.AHQG2JPGF47GOIO4WYGDWAHKTIVA"


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


# ---- endpoints ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "api", "authorize"),
    [
        ("na", "https://api.amazon.com", "https://www.amazon.com/ap/oa"),
        ("eu", "https://api.amazon.co.uk", "https://eu.account.amazon.com/ap/oa"),
        ("fe", "https://api.amazon.co.jp", "https://apac.account.amazon.com/ap/oa"),
    ],
)
def test_endpoints_per_region(region: str, api: str, authorize: str) -> None:
    settings = Settings(lwa_client_id="amzn1.application-oa2-client.real", lwa_region=region)
    endpoints = protocol.Endpoints.from_settings(settings)
    assert endpoints.authorize == authorize
    assert endpoints.token == f"{api}/auth/o2/token"
    assert endpoints.codepair == f"{api}/auth/o2/create/codepair"
    assert endpoints.tokeninfo == f"{api}/auth/o2/tokeninfo"
    assert endpoints.profile == f"{api}/user/profile"


def test_endpoint_overrides_point_at_a_standalone_emulator() -> None:
    settings = Settings(
        lwa_client_id="amzn1.application-oa2-client.real",
        lwa_api_url="http://127.0.0.1:8001/",
        lwa_authorize_url="http://127.0.0.1:8001/ap/oa",
    )
    endpoints = protocol.Endpoints.from_settings(settings)
    assert endpoints.token == "http://127.0.0.1:8001/auth/o2/token"
    assert endpoints.authorize == "http://127.0.0.1:8001/ap/oa"


def test_without_a_client_id_the_embedded_emulator_is_used() -> None:
    settings = Settings(public_url="http://127.0.0.1:9999")
    endpoints = protocol.Endpoints.from_settings(settings)
    assert endpoints.tokeninfo == "http://127.0.0.1:9999/_amazon/auth/o2/tokeninfo"
    assert endpoints.authorize == "http://127.0.0.1:9999/_amazon/ap/oa"


# ---- PKCE and the authorize URL ------------------------------------------------------------


def test_pkce_s256_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert protocol.code_challenge_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_new_verifier_is_valid_and_random() -> None:
    a, b = protocol.new_code_verifier(), protocol.new_code_verifier()
    assert a != b
    assert 43 <= len(a) <= 128
    assert protocol.PKCE_VERIFIER_RE.fullmatch(a)
    digest = hashlib.sha256(a.encode()).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert protocol.code_challenge_s256(a) == expected


@pytest.mark.parametrize("bad", ["short", "x" * 129, "a" * 42 + "!", "é" * 50])
def test_bad_verifiers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="PKCE"):
        protocol.code_challenge_s256(bad)


def test_verifier_length_bounds() -> None:
    with pytest.raises(ValueError, match="PKCE"):
        protocol.new_code_verifier(16)
    assert len(protocol.new_code_verifier(32)) == 43
    assert len(protocol.new_code_verifier(96)) == 128


def test_authorize_url_carries_every_parameter() -> None:
    url = protocol.authorize_url(
        "https://www.amazon.com/ap/oa",
        client_id="amzn1.application-oa2-client.abc",
        scope="profile postal_code",
        redirect_uri="https://example.com/auth/amazon/callback?x=1",
        state="st&te",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        scope_data={"profile": {"essential": True}},
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://www.amazon.com/ap/oa"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "client_id": "amzn1.application-oa2-client.abc",
        "scope": "profile postal_code",
        "response_type": "code",
        "redirect_uri": "https://example.com/auth/amazon/callback?x=1",
        "state": "st&te",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "scope_data": '{"profile":{"essential":true}}',
    }


def test_authorize_url_without_scope_data() -> None:
    url = protocol.authorize_url(
        "http://amazon.test/ap/oa?lang=en",
        client_id="c",
        scope="profile",
        redirect_uri="https://x/cb",
        state="s",
        code_challenge="c" * 43,
    )
    query = parse_qs(urlsplit(url).query)
    assert "scope_data" not in query
    assert query["lang"] == ["en"]


# ---- form bodies -------------------------------------------------------------------------


def test_authorization_code_form() -> None:
    assert protocol.authorization_code_form(
        code="ANudVcrBPTyYrgKMHhtu",
        redirect_uri="https://x/cb",
        client_id="cid",
        client_secret="sec",
        code_verifier="v" * 43,
    ) == {
        "grant_type": "authorization_code",
        "code": "ANudVcrBPTyYrgKMHhtu",
        "redirect_uri": "https://x/cb",
        "client_id": "cid",
        "client_secret": "sec",
        "code_verifier": "v" * 43,
    }


def test_refresh_form_with_and_without_secret() -> None:
    web = protocol.refresh_form(refresh_token="Atzr|r", client_id="web", client_secret="s")
    assert web == {
        "grant_type": "refresh_token",
        "refresh_token": "Atzr|r",
        "client_id": "web",
        "client_secret": "s",
    }
    device = protocol.refresh_form(refresh_token="Atzr|r", client_id="dev")
    assert "client_secret" not in device
    assert device["client_id"] == "dev"


def test_code_pair_form() -> None:
    assert protocol.code_pair_form(client_id="dev", scope="profile") == {
        "response_type": "device_code",
        "client_id": "dev",
        "scope": "profile",
    }
    with_data = protocol.code_pair_form(
        client_id="dev", scope="alexa:all", scope_data={"alexa:all": {"productID": "p"}}
    )
    assert json.loads(with_data["scope_data"]) == {"alexa:all": {"productID": "p"}}


def test_device_token_form_has_both_codes_and_no_client() -> None:
    form = protocol.device_token_form(device_code="85581b0f", user_code="FUP8UN")
    assert form == {"grant_type": "device_code", "device_code": "85581b0f", "user_code": "FUP8UN"}


# ---- parsing: success shapes ---------------------------------------------------------------


def test_token_response_real_shape() -> None:
    body = (
        b'{"access_token":"Atza|a","refresh_token":"Atzr|r",'
        b'"token_type":"bearer","expires_in":3600}'
    )
    tokens = protocol.parse_token_response(body)
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_in) == (
        "Atza|a",
        "Atzr|r",
        3600,
    )
    assert tokens.token_type == "bearer"


def test_token_response_string_expires_in_and_no_refresh_token() -> None:
    tokens = protocol.parse_token_response(
        _json({"access_token": "Atza|a", "token_type": "Bearer", "expires_in": "3600"})
    )
    assert tokens.expires_in == 3600
    assert tokens.refresh_token is None


def test_code_pair_real_shape() -> None:
    body = (
        b'{"user_code":"FUP8UN","device_code":"85581b0f-cf10-459e-b823-477a9220f958",'
        b'"interval":30,"verification_uri":"https://amazon.com/us/code","expires_in":600}'
    )
    assert protocol.parse_code_pair(body) == CodePair(
        user_code="FUP8UN",
        device_code="85581b0f-cf10-459e-b823-477a9220f958",
        verification_uri="https://amazon.com/us/code",
        expires_in=600,
        interval=30,
    )


def test_code_pair_without_interval_defaults_to_thirty() -> None:
    pair = protocol.parse_code_pair(
        _json({"user_code": "A", "device_code": "d", "verification_uri": "u", "expires_in": "600"})
    )
    assert (pair.interval, pair.expires_in) == (30, 600)


def test_tokeninfo_real_shape() -> None:
    info = protocol.parse_token_info(
        _json(
            {
                "aud": "amzn1.application-oa2-client.c3b5f111",
                "user_id": USER_ID,
                "iss": "https://www.amazon.com",
                "exp": 3598,
                "app_id": "amzn1.application.d65c23fdd3c64214bafc7a604820ffe9",
                "iat": 1484875823,
            }
        )
    )
    assert info == protocol.TokenInfo(
        aud="amzn1.application-oa2-client.c3b5f111",
        user_id=USER_ID,
        exp=3598,
        iss="https://www.amazon.com",
        app_id="amzn1.application.d65c23fdd3c64214bafc7a604820ffe9",
        iat=1484875823,
    )


def test_profile_shapes_by_scope() -> None:
    full = protocol.parse_profile(
        _json({"user_id": USER_ID, "name": "John Doe", "email": "j@x.com", "postal_code": "98052"})
    )
    assert full == protocol.Profile(USER_ID, "John Doe", "j@x.com", "98052")
    only_id = protocol.parse_profile(_json({"user_id": "amzn1.account.K2LI23KL2LK2"}))
    assert only_id == protocol.Profile("amzn1.account.K2LI23KL2LK2")


def test_legacy_profile_shape() -> None:
    body = _json(
        {
            "Profile": {"CustomerId": USER_ID, "Name": "Jane", "PrimaryEmail": "jane@x.com"},
            "Request-Id": "abc",
        }
    )
    assert protocol.parse_profile(body) == protocol.Profile(USER_ID, "Jane", "jane@x.com")


# ---- parsing: errors and malformed bodies ------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            b'{"error_description":"The request has an invalid parameter : client_id",'
            b'"error":"InvalidValue"}',
            OAuthErrorReply(
                400, "InvalidValue", "The request has an invalid parameter : client_id"
            ),
        ),
        (
            400,
            b'{"error_description":"gone","error":"invalid_code_pair"}',
            OAuthErrorReply(400, "invalid_code_pair", "gone"),
        ),
        (
            401,
            b'{"error_description":"Client authentication failed","error":"invalid_client"}',
            OAuthErrorReply(401, "invalid_client", "Client authentication failed"),
        ),
        (400, b'{"error":"authorization_pending"}', OAuthErrorReply(400, "authorization_pending")),
        (
            403,
            b'{"error":"insufficient_scope","error_description":"x","request_id":"bef0"}',
            OAuthErrorReply(403, "insufficient_scope", "x"),
        ),
        (503, b"<html>busy</html>", OAuthErrorReply(503, "")),
        (400, b'{"error": 5}', OAuthErrorReply(400, "")),
        (400, b"[]", OAuthErrorReply(400, "")),
    ],
)
def test_error_bodies(status: int, body: bytes, expected: OAuthErrorReply) -> None:
    assert protocol.parse_error(status, body) == expected


MALFORMED_TOKENS = [
    b"not json",
    b"\xff\xfe",
    b"[1,2]",
    b"{}",
    _json({"access_token": "Atza|a", "token_type": "bearer"}),
    _json({"access_token": "Atza|a", "token_type": "bearer", "expires_in": "soon"}),
    _json({"access_token": "Atza|a", "token_type": "bearer", "expires_in": True}),
    _json({"access_token": "Atza|a", "token_type": "bearer", "expires_in": 0}),
    _json({"access_token": "Atza|a", "token_type": "mac", "expires_in": 3600}),
    _json({"access_token": 7, "token_type": "bearer", "expires_in": 3600}),
    _json({"access_token": "", "token_type": "bearer", "expires_in": 3600}),
    _json({"access_token": "a", "token_type": "bearer", "expires_in": 1, "refresh_token": 3}),
]


@pytest.mark.parametrize("body", MALFORMED_TOKENS)
def test_malformed_token_bodies_are_amazon_unavailable(body: bytes) -> None:
    with pytest.raises(AmazonUnavailable):
        protocol.parse_token_response(body)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        _json({"aud": "a", "user_id": USER_ID}),  # no exp
        _json({"aud": "a", "user_id": "amzn1.account.lowercase", "exp": 5}),
        _json({"aud": "a", "user_id": "someone-else", "exp": 5}),
        _json({"aud": 1, "user_id": USER_ID, "exp": 5}),
        _json({"aud": "a", "user_id": USER_ID, "exp": 5.5}),
        _json({"aud": "a", "user_id": USER_ID, "exp": 5, "iat": "yesterday"}),
    ],
)
def test_malformed_tokeninfo(body: bytes) -> None:
    with pytest.raises(AmazonUnavailable):
        protocol.parse_token_info(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        _json({"name": "no id"}),
        _json({"user_id": "amzn1.account."}),
        _json({"user_id": USER_ID, "email": ["a"]}),
        _json({"Profile": "x"}),
        _json({"Profile": {"CustomerId": "bad", "Name": "n"}}),
    ],
)
def test_malformed_profile(body: bytes) -> None:
    with pytest.raises(AmazonUnavailable):
        protocol.parse_profile(body)


@pytest.mark.parametrize(
    "body",
    [
        _json({"device_code": "d", "verification_uri": "u", "expires_in": 600}),
        _json({"user_code": "A", "device_code": "d", "verification_uri": "u", "expires_in": -1}),
        _json({"user_code": "A", "device_code": "d", "verification_uri": "u"}),
        _json(
            {
                "user_code": "A",
                "device_code": "d",
                "verification_uri": "u",
                "expires_in": 600,
                "interval": "x",
            }
        ),
    ],
)
def test_malformed_code_pair(body: bytes) -> None:
    with pytest.raises(AmazonUnavailable):
        protocol.parse_code_pair(body)


@pytest.mark.parametrize(
    ("user_id", "valid"),
    [
        ("amzn1.account.AHQG2JPGF47GOIO4WYGDWAHKTIVA", True),
        ("amzn1.account.K2LI23KL2LK2", True),
        ("amzn1.account.", False),
        ("amzn1.account.abc", False),
        ("amzn1.account.ABC\n", False),
        ("amzn2.account.ABC", False),
        (" amzn1.account.ABC", False),
    ],
)
def test_user_id_format(user_id: str, valid: bool) -> None:
    assert protocol.is_valid_user_id(user_id) is valid


# ---- robustness: any body either parses or is AmazonUnavailable, never a crash -------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "user_code",
        "device_code",
        "verification_uri",
        "interval",
        "aud",
        "user_id",
        "exp",
        "iat",
        "iss",
        "name",
        "email",
        "postal_code",
        "Profile",
        "CustomerId",
        "error",
    ]
)
likely_objects = st.dictionaries(field_names, json_values | st.just(USER_ID), max_size=10)
PARSERS = [
    protocol.parse_token_response,
    protocol.parse_code_pair,
    protocol.parse_token_info,
    protocol.parse_profile,
]


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=200)
    | json_values.map(_json)
    | likely_objects.map(_json)
    | st.dictionaries(st.just("Profile"), likely_objects).map(_json)
)
def test_parsers_never_crash(body: bytes) -> None:
    for parse in PARSERS:
        with contextlib.suppress(AmazonUnavailable):
            parse(body)
    assert isinstance(protocol.parse_error(400, body), OAuthErrorReply)
