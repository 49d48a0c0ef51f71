"""Optional API keys: ``Authorization: Bearer <key>`` on every ``/v1`` route when keys are configured."""

from __future__ import annotations

import hmac

from fastapi import Request

from speechserve.server.errors import AuthenticationFailed


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def require_api_key(request: Request) -> None:
    """FastAPI dependency: pass when no keys are configured or the bearer token is one of them."""
    keys: list[str] = request.app.state.settings.api_keys
    if not keys:
        return
    token = _bearer(request)
    if token is None:
        raise AuthenticationFailed("Missing API key: send it as 'Authorization: Bearer <key>'")
    # compare against every key in constant time, so timing does not reveal a prefix match
    if not any(hmac.compare_digest(token.encode(), key.encode()) for key in keys):
        raise AuthenticationFailed("Incorrect API key provided")
