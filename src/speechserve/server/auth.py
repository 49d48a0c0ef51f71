"""Optional API keys: ``Authorization: Bearer <key>`` on every ``/v1`` route when keys are configured.

Checked from the request headers alone by the request gate (``gate.py``), before any body byte is read.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers

from speechserve.server.errors import AuthenticationFailed


def _bearer(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def api_key_error(headers: Headers, keys: list[str]) -> AuthenticationFailed | None:
    """None when no keys are configured or the bearer token is one of them; the 401 to answer otherwise."""
    if not keys:
        return None
    token = _bearer(headers)
    if token is None:
        return AuthenticationFailed("Missing API key: send it as 'Authorization: Bearer <key>'")
    # compare against every key in constant time, so timing does not reveal a prefix match
    if not any(hmac.compare_digest(token.encode(), key.encode()) for key in keys):
        return AuthenticationFailed("Incorrect API key provided")
    return None
