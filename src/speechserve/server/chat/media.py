"""Where chat audio may come from, and the policy applied to each source before any byte is read.

- ``data:`` URLs and ``input_audio`` parts: decoded size within the upload cap; ``format`` a known audio type.
- Any other URL: at most ``MAX_URL_CHARS``, no control characters, and it must parse (a bracketed IPv6
  literal, a valid IDNA host name, a port in range); anything malformed is a 400, never an exception.
- ``http(s)://``: the host is resolved and *every* address it resolves to must be public (not private,
  loopback, link-local, multicast, reserved, unspecified or shared; an IPv6 address that carries an IPv4 one
  — IPv4-mapped, NAT64, 6to4, Teredo — is judged by that IPv4 too) before connecting; the connection then
  goes to that checked address (the ``Host`` header and TLS name stay the URL's), so a second DNS answer
  cannot swap in a private one. Redirects are followed by hand, each target checked the same way, at most
  ``media_max_redirects``. One timeout covers the whole fetch; the body is read under the size cap.
- ``file://``: only below ``allowed_local_media_path`` (symlinks resolved first), and only when set.

Everything else is refused with :class:`MediaURLRejected` (400).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from speechserve.audio.decode import INPUT_FORMATS
from speechserve.errors import InvalidRequest, MediaURLRejected, UnsupportedAudioFormat
from speechserve.server.chat.protocol import AudioURLPart, ChatMessage, InputAudioPart
from speechserve.server.settings import ServerSettings
from speechserve.server.uploads import too_large

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) → every IP address the host resolves to."""
_REDIRECTS = {301, 302, 303, 307, 308}
MAX_URL_CHARS = 8192
"""Longest http(s) or file:// audio URL accepted; longer audio belongs in a data: URL or ``input_audio``."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215 local use: never globally reachable


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def embedded_ipv4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: IPv4-mapped (``::ffff:0:0/96``), NAT64 (``64:ff9b::/96``),
    6to4 (``2002::/16``) or Teredo (``2001::/32``: its server and its de-obfuscated client)."""
    if addr.ipv4_mapped is not None:
        return [addr.ipv4_mapped]
    if addr in _NAT64:
        return [ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)]
    if addr.sixtofour is not None:
        return [addr.sixtofour]
    return list(addr.teredo) if addr.teredo is not None else []


def is_public(ip: str) -> bool:
    """True only for globally routable unicast addresses. An IPv6 address carrying an IPv4 one is refused
    when that IPv4 would be; mapped and NAT64 addresses, mere spellings of their IPv4, are judged as it."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address):
        if addr in _NAT64_LOCAL:
            return False
        if inner := embedded_ipv4(addr):
            if not all(_global(v4) for v4 in inner):
                return False
            if addr.ipv4_mapped is not None or addr in _NAT64:
                return True
    return _global(addr)


def _global(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return addr.is_global and not (
        addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast
        or addr.is_reserved or addr.is_unspecified
    )  # fmt: skip


def _literal(host: str) -> list[str]:
    """``[host]`` when it is an IP address already (no DNS query), else ``[]``."""
    try:
        return [str(ipaddress.ip_address(host.split("%", 1)[0]))]
    except ValueError:
        return []


def check_url_text(url: str) -> None:
    """Refuse an audio URL (not ``data:``) that is too long or carries a control character (CR, LF, NUL…)."""
    if len(url) > MAX_URL_CHARS:
        raise MediaURLRejected(
            f"the audio URL is {len(url)} characters long; at most {MAX_URL_CHARS} are accepted "
            "(send the audio itself as input_audio or a data: URL instead)",
            "messages",
        )
    if bad := _CONTROL.search(url):
        raise MediaURLRejected(
            f"the audio URL contains a control character ({bad.group()!r} at position {bad.start()})",
            "messages",
        )


def _valid_hostname(host: str) -> bool:
    labels = (host[:-1] if host.endswith(".") else host).split(".")
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def parse_http_url(url: str) -> tuple[httpx.URL, str]:
    """``(url parsed, its ASCII host)`` for fetching; MediaURLRejected when it is not an http(s) URL with a
    valid host (an IP literal, or a name whose IDNA form has labels of letters, digits, ``-``, ``_``) and port."""
    check_url_text(url)
    try:
        parts = httpx.URL(url)
        host, port = parts.raw_host.decode("ascii"), parts.port
    except (httpx.InvalidURL, ValueError) as exc:  # a bad IDNA label is a UnicodeError, a ValueError
        raise MediaURLRejected(f"the audio URL is malformed: {exc}", "messages") from None
    if parts.scheme not in ("http", "https") or not host:
        raise MediaURLRejected(f"only http(s) URLs with a host can be fetched, not {url[:60]!r}", "messages")
    if port is not None and not 0 < port < 65536:
        raise MediaURLRejected(f"the audio URL's port {port} is out of range", "messages")
    if not _literal(host) and not _valid_hostname(host):
        raise MediaURLRejected(f"the audio URL's host {host[:80]!r} is not a valid host name", "messages")
    return parts, host


class MediaFetcher:
    """Turns a chat's audio parts into what the pipeline decodes. Lifetime: the app's lifespan."""

    def __init__(
        self, settings: ServerSettings, resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:  # fmt: skip
        self.cap = settings.max_upload_bytes
        self.timeout = settings.media_fetch_timeout
        self.max_redirects = settings.media_max_redirects
        root = settings.allowed_local_media_path
        self.local_root = Path(root).resolve() if root else None
        self.resolver, self.transport = resolver, transport

    async def messages(self, messages: list[ChatMessage]) -> list[dict[str, Any]]:
        """Messages as the pipeline takes them, every audio part checked (and fetched) by policy."""
        out = []
        for message in messages:
            content = message.content
            if not isinstance(content, list):
                out.append({"role": message.role, "content": content or ""})
                continue
            out.append({"role": message.role, "content": [await self._part(p) for p in content]})
        return out

    async def _part(self, part: Any) -> dict[str, Any]:
        if isinstance(part, InputAudioPart):
            fmt = part.input_audio.format.lower()
            if fmt not in INPUT_FORMATS:
                raise UnsupportedAudioFormat(
                    f"input_audio.format {fmt!r} is not supported; use one of {', '.join(INPUT_FORMATS)}",
                    "messages",
                )
            self._check_base64(part.input_audio.data)
            return {"type": "input_audio", "input_audio": {"data": part.input_audio.data, "format": fmt}}
        if isinstance(part, AudioURLPart):
            return await self._url(part.audio_url.url)
        return part.model_dump()

    async def _url(self, url: str) -> dict[str, Any]:
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            self._check_base64(url.split(",", 1)[-1])
            return {"type": "audio_url", "audio_url": {"url": url}}
        check_url_text(url)
        if scheme in ("http", "https"):
            return {"type": "audio", "audio": await self.fetch(url)}
        if scheme == "file":
            return {"type": "audio", "audio": await asyncio.to_thread(self.read_local, url)}
        raise MediaURLRejected(
            f"audio_url scheme {scheme!r} is not supported; use data:, http(s):// or file://", "messages"
        )

    def _check_base64(self, data: str) -> None:
        size = len(data) * 3 // 4
        if size > self.cap:
            raise too_large(size, self.cap, "an audio part", "messages")

    # ---- file:// ------------------------------------------------------------------------------------------
    def read_local(self, url: str) -> bytes:
        """Bytes of a ``file://`` URL inside the allowed media directory."""
        if self.local_root is None:
            raise MediaURLRejected(
                "file:// audio URLs are disabled on this server (start it with --allowed-local-media-path)",
                "messages",
            )
        path = _local_path(url, self.local_root)
        try:
            if not path.is_file():
                raise InvalidRequest(f"no such file in the allowed media directory: {path.name}", "messages")
            if (size := path.stat().st_size) > self.cap:
                raise too_large(size, self.cap, "the audio file", "messages")
            return path.read_bytes()
        except OSError as exc:  # a name too long, a permission: the caller's problem, not a crash
            raise InvalidRequest(f"cannot read the audio file: {exc.strerror}", "messages") from None

    # ---- http(s):// ---------------------------------------------------------------------------------------
    async def fetch(self, url: str) -> bytes:
        """The body of an http(s) URL, every hop's host checked before connecting."""
        try:
            return await asyncio.wait_for(self._fetch(url), self.timeout)
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
            raise InvalidRequest(
                f"fetching the audio URL took longer than {self.timeout:g} s", "messages"
            ) from None
        except (httpx.InvalidURL, UnicodeError) as exc:  # httpx parses a Location itself, IDNA errors and all
            raise MediaURLRejected(f"the audio URL or its redirect is malformed: {exc}", "messages") from None
        except httpx.HTTPError as exc:
            raise InvalidRequest(f"fetching the audio URL failed: {type(exc).__name__}", "messages") from None

    async def _fetch(self, url: str) -> bytes:
        async with httpx.AsyncClient(
            transport=self.transport, follow_redirects=False, trust_env=False
        ) as client:
            for _ in range(self.max_redirects + 1):
                request = await self._pinned_request(url)
                async with client.stream("GET", request.url, headers=request.headers, extensions=request.extensions) as response:  # fmt: skip
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        url = _redirect_target(url, location)
                        continue
                    if response.status_code >= 400:
                        raise InvalidRequest(
                            f"fetching the audio URL failed: HTTP {response.status_code}", "messages"
                        )
                    return await self._read_capped(response)
        raise MediaURLRejected(f"the audio URL redirected more than {self.max_redirects} times", "messages")

    async def _pinned_request(self, url: str) -> httpx.Request:
        """A request to the checked address of ``url``'s host, with the URL's Host header and TLS name."""
        parts, host = parse_http_url(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = _literal(host) or await self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise InvalidRequest(f"cannot resolve the audio URL's host {host!r}: {exc}", "messages") from None
        bad = [ip for ip in addresses if not is_public(ip)]
        if bad or not addresses:
            raise MediaURLRejected(
                f"the audio URL's host {host!r} resolves to a non-public address ({', '.join(bad) or 'none'}); "
                "private, loopback, link-local, multicast and reserved addresses are refused",
                "messages",
            )
        pinned = parts.copy_with(host=addresses[0], port=port)
        host_header = parts.netloc.decode("ascii")  # the URL's own host[:port], IPv6 in brackets
        return httpx.Request("GET", pinned, headers={"Host": host_header}, extensions={"sni_hostname": host})

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.cap:
            raise too_large(int(declared), self.cap, "the audio at the URL", "messages")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > self.cap:
                raise too_large(len(body), self.cap, "the audio at the URL", "messages")
        return bytes(body)


def _redirect_target(url: str, location: str) -> str:
    try:
        return urljoin(url, location)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket in Location
        raise MediaURLRejected(
            f"the audio URL redirected to a malformed location: {exc}", "messages"
        ) from None


def _local_path(url: str, root: Path) -> Path:
    """The resolved path of a ``file://`` URL, refused unless it lies below ``root``."""
    check_url_text(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise MediaURLRejected(f"the audio URL is malformed: {exc}", "messages") from None
    if parts.netloc not in ("", "localhost"):
        raise MediaURLRejected(f"file:// URLs must name a local path, not host {parts.netloc!r}", "messages")
    raw = unquote(parts.path)
    if _CONTROL.search(raw):
        raise MediaURLRejected("the file:// path contains a control character", "messages")
    try:
        path = Path(raw).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, an odd name
        raise MediaURLRejected(f"the file:// path cannot be resolved: {exc}", "messages") from None
    if not path.is_relative_to(root):
        raise MediaURLRejected("the file:// path is outside the allowed local media directory", "messages")
    return path
