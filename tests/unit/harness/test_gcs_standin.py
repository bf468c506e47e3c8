"""The GCS stand-in's OAuth check: only the service account's own key gets a token."""

from __future__ import annotations

import json
import time

import pytest
from google.auth import crypt, jwt

from harness.gcs import load_standin, make_service_account

TOKEN_URI = "http://gcs:4443/token"


@pytest.fixture(scope="module")
def standin():
    return load_standin()


def assertion(key_file, audience=TOKEN_URI, issued=None, lifetime=3600) -> str:
    """A JWT as google-auth makes one from a key file (service_account.Credentials)."""
    info = json.loads(key_file.read_text())
    now = int(time.time() if issued is None else issued)
    claims = {"iss": info["client_email"], "aud": audience, "iat": now, "exp": now + lifetime}
    return jwt.encode(crypt.RSASigner.from_service_account_info(info), claims).decode()


def test_the_accounts_own_jwt_gets_a_token_that_opens_the_store(standin, tmp_path):
    account = make_service_account(tmp_path, TOKEN_URI)
    tokens = standin.Tokens(account.public_key_file.read_bytes())
    token = tokens.exchange(assertion(account.key_file), {TOKEN_URI})
    assert tokens.valid(f"Bearer {token}")
    assert not tokens.valid(None) and not tokens.valid("Bearer forged") and not tokens.valid(token)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("another key", "not signed by the service account's key"),
        ("audience", "audience"),
        ("expired", "expired"),
        ("future", "issued in the future"),
        ("garbage", "malformed"),
    ],
)
def test_anything_else_is_refused(standin, tmp_path, change, message):
    account = make_service_account(tmp_path / "ours", TOKEN_URI)
    tokens = standin.Tokens(account.public_key_file.read_bytes())
    jwt_text = {
        "another key": lambda: assertion(make_service_account(tmp_path / "x", TOKEN_URI).key_file),
        "audience": lambda: assertion(account.key_file, audience="http://elsewhere/token"),
        "expired": lambda: assertion(account.key_file, issued=time.time() - 7200),
        "future": lambda: assertion(account.key_file, issued=time.time() + 3600),
        "garbage": lambda: "not.a.jwt",
    }[change]()
    with pytest.raises(ValueError, match=message):
        tokens.exchange(jwt_text, {TOKEN_URI})
