"""Secrets out of error text: `redact(text)` before any error string is printed, logged, cached or written.

A server may echo the request's `Authorization` header in its error body, so error text can carry
the API key. `remember_secret` is called with every key rlaif reads from the environment
(backends/_http.py); `redact` removes those keys and anything shaped like one (`sk-...`,
`sk-ant-...`, `Bearer ...`, `x-api-key: ...`, `authorization: ...`). Applied where error text leaves
the call layer (calls/pool.py) and again when the CLI prints an error. A value that only shows how to send
a secret (`Bearer $RLAIF_SERVE_TOKEN`, `<token>`, `...`) is no secret and stays: a hint that reads
`Authorization: [redacted]` tells nobody what to do. Leaf: imports nothing of rlaif.
"""
from __future__ import annotations

import re

__all__ = ["MASK", "redact", "remember_secret"]

MASK = "[redacted]"
_MIN_LEN = 6  # shorter "keys" (e.g. a local server's dummy) would mask ordinary words
_known: set[str] = set()

# A header name followed by its value, quoted or not (JSON bodies, repr'd dicts, raw header dumps).
_HEADER = re.compile(r"""(?i)((?<![\w-])["']?(?:authorization|x-api-key|api[-_]key)["']?\s*[:=]\s*["']?"""
                     r"""(?:bearer\s+)?)([^\s"',;}]+)""")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{6,}")
# How to send a secret, not a secret: $VAR or ${VAR}, <placeholder>, an ellipsis, or an already masked value.
_PLACEHOLDER = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|<[^<>\s]*>|\.\.\.|…|" + re.escape(MASK))
_KEY_SHAPED = re.compile(r"\bsk-[A-Za-z0-9_-]{6,}")


def remember_secret(value: str | None) -> None:
    """Mask this exact value in every later `redact` (the API keys in use)."""
    if value and len(value) >= _MIN_LEN:
        _known.add(value)


def redact(text: object) -> str:
    """`text` as a string with known secrets and key-shaped tokens replaced by MASK."""
    s = str(text)
    for secret in sorted(_known, key=len, reverse=True):  # longest first: a key containing another
        s = s.replace(secret, MASK)
    s = _HEADER.sub(lambda m: m.group(0) if _PLACEHOLDER.fullmatch(m.group(2)) else m.group(1) + MASK, s)
    s = _BEARER.sub(lambda m: m.group(1) + MASK, s)
    return _KEY_SHAPED.sub(MASK, s)
