"""Where chat audio may come from, and the policy applied to each source before any byte is read.

- ``data:`` URLs and ``input_audio`` parts: decoded size within the upload cap; ``format`` a known audio type.
- ``http(s)://``: the host is resolved and *every* address it resolves to must be public (not private,
  loopback, link-local, multicast, reserved, unspecified or shared) before connecting; the connection then
  goes to that checked address (the ``Host`` header and TLS name stay the URL's), so a second DNS answer
  cannot swap in a private one. Redirects are followed by hand, each target checked the same way, at most
  ``media_max_redirects``. One timeout covers the whole fetch; the body is read under the size cap.
- ``file://``: only below ``allowed_local_media_path`` (symlinks resolved first), and only when set.

Everything else is refused with :class:`MediaURLRejected` (400).
"""

from __future__ import annotations

import asyncio
import ipaddress
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


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(ip: str) -> bool:
    """True only for globally routable unicast addresses (IPv4-mapped IPv6 judged as its IPv4)."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
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
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise MediaURLRejected(
                f"file:// URLs must name a local path, not host {parts.netloc!r}", "messages"
            )
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(self.local_root):
            raise MediaURLRejected(
                "the file:// path is outside the allowed local media directory", "messages"
            )
        if not path.is_file():
            raise InvalidRequest(f"no such file in the allowed media directory: {path.name}", "messages")
        if (size := path.stat().st_size) > self.cap:
            raise too_large(size, self.cap, "the audio file", "messages")
        return path.read_bytes()

    # ---- http(s):// ---------------------------------------------------------------------------------------
    async def fetch(self, url: str) -> bytes:
        """The body of an http(s) URL, every hop's host checked before connecting."""
        try:
            return await asyncio.wait_for(self._fetch(url), self.timeout)
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
            raise InvalidRequest(
                f"fetching the audio URL took longer than {self.timeout:g} s", "messages"
            ) from None
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
                        url = urljoin(url, location)
                        continue
                    if response.status_code >= 400:
                        raise InvalidRequest(
                            f"fetching the audio URL failed: HTTP {response.status_code}", "messages"
                        )
                    return await self._read_capped(response)
        raise MediaURLRejected(f"the audio URL redirected more than {self.max_redirects} times", "messages")

    async def _pinned_request(self, url: str) -> httpx.Request:
        """A request to the checked address of ``url``'s host, with the URL's Host header and TLS name."""
        parts = httpx.URL(url)
        if parts.scheme not in ("http", "https") or not parts.host:
            raise MediaURLRejected(f"only http(s) URLs can be fetched, not {url[:60]!r}", "messages")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = _literal(parts.host) or await self.resolver(parts.host, port)
        except OSError as exc:
            raise InvalidRequest(
                f"cannot resolve the audio URL's host {parts.host!r}: {exc}", "messages"
            ) from None
        bad = [ip for ip in addresses if not is_public(ip)]
        if bad or not addresses:
            raise MediaURLRejected(
                f"the audio URL's host {parts.host!r} resolves to a non-public address ({', '.join(bad) or 'none'}); "
                "private, loopback, link-local, multicast and reserved addresses are refused",
                "messages",
            )
        ip = addresses[0]
        pinned = parts.copy_with(host=ip, port=port)
        host_header = parts.host if parts.port is None else f"{parts.host}:{parts.port}"
        return httpx.Request(
            "GET", pinned, headers={"Host": host_header}, extensions={"sni_hostname": parts.host}
        )

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
