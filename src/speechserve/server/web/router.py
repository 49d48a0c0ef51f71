"""``GET /``: the web playground page, and ``GET /static/{name}``: its scripts, styles and icon.

The files live in ``static/`` inside the package (package data): plain ES modules and CSS, no build step and
nothing fetched from elsewhere. Both routes are outside ``/v1``, so the request gate leaves them open without
an API key (the page asks for the key when an API call answers 401) and while the models still load.

Only plain file names directly in ``static/`` are served (no sub-paths, no dot files); every response is
revalidated (``Cache-Control: no-cache`` with an ``ETag``), so an upgraded server never runs stale scripts.
The page gets a Content-Security-Policy that allows nothing but this origin.
"""

from __future__ import annotations

import hashlib
import re
from importlib.resources import files

from fastapi import APIRouter, Request, Response

router = APIRouter()

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
"""Served extensions and their content types."""
STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(html|js|css|svg)$")
"""A servable file name: one path segment, no dot file, a known extension."""
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The page talks to this server only (``connect-src 'self'`` covers its own ``ws:``/``wss:`` origin)."""
PAGE_HEADERS = {"Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer"}


def _file_response(name: str, request: Request, headers: dict[str, str] | None = None) -> Response:
    """The static file ``name`` (404 for anything else), or 304 when the client's copy is current."""
    path = files("speechserve.server.web") / "static" / name
    if not STATIC_NAME.match(name) or not path.is_file():
        return Response(status_code=404)
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        **(headers or {}),
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    suffix = name[name.rindex(".") :]
    return Response(body, media_type=MEDIA_TYPES[suffix], headers=headers)


@router.get("/", include_in_schema=False)
async def playground(request: Request) -> Response:
    """The playground page (speak, transcribe, server status)."""
    return _file_response("index.html", request, PAGE_HEADERS)


@router.get("/static/{name}", include_in_schema=False)
async def static(name: str, request: Request) -> Response:
    """One of the page's scripts, styles or icons."""
    return _file_response(name, request)
