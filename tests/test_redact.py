"""`rlaif.redact`: secrets are masked, the examples of how to send one are not (the missing-token hint read
`Authorization: [redacted]`)."""
from __future__ import annotations

import pytest
from serve_helpers import TOKEN, Served

from rlaif.redact import MASK, redact, remember_secret

SECRET = "tok-5d1c9e7a3b2f4e6d8a0c"


@pytest.mark.parametrize("text,kept", [
    ("send 'Authorization: Bearer $RLAIF_SERVE_TOKEN'", "Authorization: Bearer $RLAIF_SERVE_TOKEN"),
    ("x-api-key: ${ANTHROPIC_API_KEY}", "x-api-key: ${ANTHROPIC_API_KEY}"),
    ("Authorization: Bearer <token>", "Authorization: Bearer <token>"),
    ("clients send 'Authorization: Bearer ...'", "Authorization: Bearer ..."),
])
def test_examples_of_how_to_send_a_secret_stay(text, kept):
    assert kept in redact(text)


@pytest.mark.parametrize("text", [
    f"Authorization: Bearer {SECRET}", f'{{"authorization": "Bearer {SECRET}"}}', f"api_key={SECRET}",
    f"x-api-key: {SECRET}", f"Authorization: Bearer ${SECRET}x(", f"the key {SECRET}",
])
def test_secrets_are_still_masked(text):
    remember_secret(SECRET)
    out = redact(text)
    assert SECRET not in out and MASK in out


def test_the_missing_token_refusal_says_how_to_send_it(tmp_path):
    """As met: a token-protected `rlaif serve`, a client without the token; the refusal, as the CLI prints it."""
    from rlaif.client import RewardClient, ServiceError

    with Served([], cache=tmp_path / "cache", token=TOKEN) as svc, RewardClient(svc.url, retries=0) as client:
        with pytest.raises(ServiceError) as e:
            client.score(["p"], ["r"], scorers=["rule"])
    shown = redact(e.value)  # what `rlaif` prints (rlaif.cli.entry)
    assert "HTTP 401" in shown and "'Authorization: Bearer $RLAIF_SERVE_TOKEN'" in shown, shown
    assert "set RLAIF_SERVE_TOKEN on the client" in shown and MASK not in shown
