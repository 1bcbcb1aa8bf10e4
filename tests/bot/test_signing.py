"""Signed tokens: claims back as signed, for one purpose, until `exp` by the caller's clock."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import URLSafeSerializer

from bot.signing import (
    LINK_TTL,
    BadToken,
    DashboardSettings,
    login_token,
    login_url,
    sign,
    unsign,
)

SECRET = b"a-secret-of-thirty-two-characters"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CLAIMS = {"p": 7, "exp": int((NOW + timedelta(minutes=5)).timestamp()), "n": "é✓"}


def test_claims_come_back_as_signed_for_their_purpose_alone() -> None:
    token = sign(SECRET, "login", CLAIMS)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)  # a query value and a cookie as it is
    assert unsign(SECRET, "login", token, NOW) == CLAIMS
    for purpose, secret in (("session", SECRET), ("flash", SECRET), ("login", b"x" * 32)):
        with pytest.raises(BadToken) as refused:
            unsign(secret, purpose, token, NOW)
        assert not refused.value.expired


def test_a_token_is_itsdangerous_own_url_safe_format_with_the_purpose_as_salt() -> None:
    """Any itsdangerous reader with the secret (a support script, a second service) can
    check a token; none reads it for another purpose."""
    token = sign(SECRET, "session", CLAIMS)
    reader = URLSafeSerializer(
        SECRET, salt="whoknows.session", signer_kwargs={"digest_method": hashlib.sha256}
    )
    assert reader.loads(token) == CLAIMS
    assert sign(SECRET, "session", CLAIMS) == reader.dumps(CLAIMS)  # deterministic


def test_a_token_expires_at_its_exp_by_the_callers_clock() -> None:
    token = sign(SECRET, "session", CLAIMS)
    assert unsign(SECRET, "session", token, NOW + timedelta(minutes=4, seconds=59))
    with pytest.raises(BadToken) as refused:
        unsign(SECRET, "session", token, NOW + timedelta(minutes=5))
    assert refused.value.expired


@pytest.mark.parametrize(
    "claims", [{"p": 7}, {"p": 7, "exp": "soon"}, [1, 2], "just text"], ids=repr
)
def test_a_signed_token_without_a_numeric_expiry_is_invalid(claims: object) -> None:
    # Signed with this very secret and purpose, as a careless caller might.
    token = URLSafeSerializer(
        SECRET, salt="whoknows.login", signer_kwargs={"digest_method": hashlib.sha256}
    ).dumps(claims)
    with pytest.raises(BadToken) as refused:
        unsign(SECRET, "login", token, NOW)
    assert not refused.value.expired


def test_a_damaged_or_weaker_token_is_invalid() -> None:
    token = sign(SECRET, "login", CLAIMS)
    payload, _, signature = token.rpartition(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    sha1 = URLSafeSerializer(SECRET, salt="whoknows.login").dumps(CLAIMS)  # itsdangerous' default
    for bad in (f"{payload}.{flipped}", f"x{token}", token[:-3], "", "é.é", sha1):
        with pytest.raises(BadToken):
            unsign(SECRET, "login", bad, NOW)
    assert len(signature) == 43  # HMAC-SHA256, unpadded base64


def test_a_sign_in_link_is_for_one_person_ten_minutes_and_each_is_new() -> None:
    settings = DashboardSettings(SECRET, "https://bot.example")
    first, second = login_token(settings, 7, NOW), login_token(settings, 7, NOW)
    claims = unsign(SECRET, "login", first, NOW)
    assert claims["p"] == 7 and claims["exp"] == int((NOW + LINK_TTL).timestamp())
    # A fresh nonce in each: the dashboard spends a link by it, once.
    assert claims["n"] != unsign(SECRET, "login", second, NOW)["n"]
    assert login_url(settings, 7, NOW).startswith("https://bot.example/dashboard/login?token=")
