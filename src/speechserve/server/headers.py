"""Response headers built from what a client sent, made safe to send back.

``X-Ignored-Fields`` names request fields the server accepted but did not use. A field name is the client's
own text (any Unicode, CR/LF, commas, megabytes), while a header value must be short Latin-1 without line
breaks; so each name that is not an HTTP token is percent-encoded (UTF-8, as in URLs: ``ключ`` →
``%D0%BA%D0%BB%D1%8E%D1%87``), names are joined with ``", "``, and past :data:`MAX_IGNORED_HEADER` characters the
rest are left out and the list ends with ``...``. Responses with a JSON body also list the names verbatim in
``ignored_fields`` (:func:`json_safe`: only a lone surrogate, which UTF-8 cannot carry, is written as its
``\\udXXX`` escape).
"""

from __future__ import annotations

from urllib.parse import quote

MAX_IGNORED_HEADER = 1024
"""Longest ``X-Ignored-Fields`` value, in characters (well under every client's header limit)."""
_TOKEN_SAFE = "!#$&'*+-.^_`|~"
"""RFC 9110 ``tchar`` punctuation (``%`` left out so that it is always an escape); letters and digits are
never quoted."""
_MORE = "..."


def header_safe(name: str) -> str:
    """``name`` as itself when it is an HTTP token, percent-encoded (UTF-8) otherwise."""
    return quote(name, safe=_TOKEN_SAFE, errors="surrogatepass")


def json_safe(name: str) -> str:
    """``name`` unchanged unless it holds lone surrogates (JSON text allows them, UTF-8 does not)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def ignored_fields_header(names: list[str]) -> str:
    """The ``X-Ignored-Fields`` value for ``names`` (see the module docstring)."""
    out: list[str] = []
    length = 0
    for name in names:
        safe = header_safe(name)
        if length + len(safe) + 2 > MAX_IGNORED_HEADER - len(_MORE) - 2:
            out.append(_MORE)
            break
        out.append(safe)
        length += len(safe) + 2
    return ", ".join(out)
