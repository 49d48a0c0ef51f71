"""The chat audio source policy, offline: a fake DNS and a mock transport stand in for the network, so
the public-address path, redirects, size caps and the local-file allow-list are exercised without traffic."""

from __future__ import annotations

import os

import httpx
import pytest

from speechserve.errors import InputTooLarge, InvalidRequest, MediaURLRejected
from speechserve.server.chat.media import MediaFetcher, is_public
from speechserve.server.settings import ServerSettings

pytestmark = pytest.mark.anyio

PUBLIC = "93.184.216.34"
DNS = {
    "audio.example": [PUBLIC],
    "v6.example": ["2606:2800:220:1:248:1893:25c8:1946"],
    "mixed.example": [PUBLIC, "10.0.0.7"],  # one private answer is enough to refuse
    "rebind.example": ["192.168.1.20"],
}


async def fake_dns(host: str, port: int) -> list[str]:
    if host in DNS:
        return DNS[host]
    raise OSError(f"unknown host {host}")


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        (PUBLIC, True), ("8.8.8.8", True), ("2606:4700::1111", True),
        ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.0.1", False),
        ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.251", False),
        ("240.0.0.1", False), ("255.255.255.255", False), ("::1", False), ("fe80::1%eth0", False),
        ("fc00::1", False), ("ff02::1", False), ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False),
        ("::", False),
    ],
)  # fmt: skip
def test_only_global_unicast_addresses_are_public(ip: str, public: bool) -> None:
    assert is_public(ip) is public


def _fetcher(handler, tmp_root: str | None = None, **settings) -> tuple[MediaFetcher, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    s = ServerSettings(model="m", max_upload_mb=0.001, allowed_local_media_path=tmp_root, **settings)
    return MediaFetcher(s, resolver=fake_dns, transport=httpx.MockTransport(record)), seen


async def test_public_host_is_fetched_from_the_checked_address() -> None:
    fetcher, seen = _fetcher(lambda r: httpx.Response(200, content=b"RIFF-audio"))
    assert await fetcher.fetch("https://audio.example/clips/a.wav?x=1") == b"RIFF-audio"
    (request,) = seen
    assert request.url.host == PUBLIC and request.url.path == "/clips/a.wav" and request.url.query == b"x=1"
    assert request.headers["host"] == "audio.example"
    assert request.extensions["sni_hostname"] == "audio.example"  # TLS still checks the real name
    fetcher, seen = _fetcher(lambda r: httpx.Response(200, content=b"v6"))
    assert await fetcher.fetch("http://v6.example:8080/a") == b"v6"
    assert seen[0].url.host == DNS["v6.example"][0] and seen[0].headers["host"] == "v6.example:8080"


@pytest.mark.parametrize("host", ["mixed.example", "rebind.example"])
async def test_any_private_answer_refuses_the_host(host: str) -> None:
    fetcher, seen = _fetcher(lambda r: httpx.Response(200, content=b"x"))
    with pytest.raises(MediaURLRejected, match="non-public"):
        await fetcher.fetch(f"http://{host}/a.wav")
    assert seen == []


async def test_redirects_are_checked_hop_by_hop() -> None:
    def to_private(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "http://127.0.0.1:9/steal"})

    fetcher, seen = _fetcher(to_private)
    with pytest.raises(MediaURLRejected):
        await fetcher.fetch("http://audio.example/a.wav")
    assert len(seen) == 1  # the redirect target was never contacted

    def hop(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/final.wav":
            return httpx.Response(200, content=b"ok")
        return httpx.Response(307, headers={"location": "/final.wav"})

    fetcher, seen = _fetcher(hop)
    assert await fetcher.fetch("http://audio.example/start") == b"ok" and len(seen) == 2
    loop = lambda r: httpx.Response(301, headers={"location": "/again"})  # noqa: E731
    fetcher, seen = _fetcher(loop, media_max_redirects=2)
    with pytest.raises(MediaURLRejected, match="redirected more than 2"):
        await fetcher.fetch("http://audio.example/again")
    assert len(seen) == 3


async def test_size_cap_and_http_errors() -> None:
    fetcher, _ = _fetcher(lambda r: httpx.Response(200, content=b"x" * 1001))  # cap: 1000 bytes
    with pytest.raises(InputTooLarge):
        await fetcher.fetch("http://audio.example/big.wav")

    async def pieces():
        for _ in range(2):
            yield b"x" * 600

    fetcher, _ = _fetcher(lambda r: httpx.Response(200, content=pieces()))  # no content-length
    with pytest.raises(InputTooLarge):
        await fetcher.fetch("http://audio.example/stream.wav")
    fetcher, _ = _fetcher(lambda r: httpx.Response(404))
    with pytest.raises(InvalidRequest, match="HTTP 404"):
        await fetcher.fetch("http://audio.example/missing.wav")
    with pytest.raises(InvalidRequest, match="cannot resolve"):
        await fetcher.fetch("http://nowhere.example/a.wav")


def test_local_files_only_under_the_allowed_directory(tmp_path) -> None:
    media, secret = tmp_path / "media", tmp_path / "secret"
    media.mkdir(), secret.mkdir()
    (media / "a.wav").write_bytes(b"small")
    (media / "big.wav").write_bytes(b"x" * 2000)
    (secret / "key.wav").write_bytes(b"secret")
    os.symlink(secret / "key.wav", media / "escape.wav")
    fetcher, _ = _fetcher(lambda r: httpx.Response(500), tmp_root=str(media))
    assert fetcher.read_local(f"file://{media}/a.wav") == b"small"
    assert fetcher.read_local(f"file://localhost{media}/a.wav") == b"small"
    for url in (f"file://{secret}/key.wav", f"file://{media}/../secret/key.wav", f"file://{media}/escape.wav", f"file://otherhost{media}/a.wav"):  # fmt: skip
        with pytest.raises(MediaURLRejected):
            fetcher.read_local(url)
    with pytest.raises(InputTooLarge):
        fetcher.read_local(f"file://{media}/big.wav")
    with pytest.raises(InvalidRequest, match="no such file"):
        fetcher.read_local(f"file://{media}/missing.wav")
    closed, _ = _fetcher(lambda r: httpx.Response(500))
    with pytest.raises(MediaURLRejected, match="disabled"):
        closed.read_local(f"file://{media}/a.wav")


async def test_file_url_in_a_chat_under_the_allow_list(asr_app, asr_http, tmp_path) -> None:
    from ._util import wav_bytes

    (tmp_path / "talk.wav").write_bytes(wav_bytes(1.0))
    service = asr_app.state.chat
    real = service.fetcher
    settings = asr_app.state.settings.model_copy(update={"allowed_local_media_path": str(tmp_path)})
    service.fetcher = MediaFetcher(settings)
    try:
        part = {"type": "audio_url", "audio_url": {"url": f"file://{tmp_path}/talk.wav"}}
        body = {"model": "whisper-1", "messages": [{"role": "user", "content": [part]}], "max_tokens": 2}
        response = await asr_http.post("/v1/chat/completions", json=body)
    finally:
        service.fetcher = real
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["prompt_tokens"] > 375  # the audio made it into the prompt


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("2002:7f00:1::1", False), ("2002:a00:1::", False), ("2002:a9fe:a9fe::1", False),  # 6to4
        ("2002:808:808::1", True),
        ("64:ff9b::7f00:1", False), ("64:ff9b::a9fe:a9fe", False), ("64:ff9b::c0a8:1", False),  # NAT64
        ("64:ff9b::808:808", True), ("64:ff9b:1::808:808", False),  # 64:ff9b:1::/48 is local use
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo, client 127.0.0.1 obfuscated
        ("::ffff:7f00:1", False), ("::ffff:a9fe:a9fe", False), ("::ffff:8.8.8.8", True),  # IPv4-mapped
    ],
)  # fmt: skip
def test_ipv6_carrying_an_ipv4_is_judged_by_it(ip: str, public: bool) -> None:
    assert is_public(ip) is public


def test_embedded_ipv4_of_each_form() -> None:
    from ipaddress import IPv4Address, IPv6Address

    from speechserve.server.chat.media import embedded_ipv4

    assert embedded_ipv4(IPv6Address("2002:a00:1::1")) == [IPv4Address("10.0.0.1")]
    assert embedded_ipv4(IPv6Address("64:ff9b::a9fe:a9fe")) == [IPv4Address("169.254.169.254")]
    teredo = embedded_ipv4(IPv6Address("2001:0:4136:e378:8000:63bf:80ff:fffe"))
    assert teredo == [IPv4Address("65.54.227.120"), IPv4Address("127.0.0.1")]  # server, client
    assert embedded_ipv4(IPv6Address("2606:4700::1111")) == []


async def test_host_is_sent_as_written_ascii_and_bracketed() -> None:
    asked: list[str] = []

    async def dns(host: str, port: int) -> list[str]:
        asked.append(host)
        return [PUBLIC]

    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, content=b"ok"))
    fetcher = MediaFetcher(ServerSettings(model="m"), resolver=dns, transport=transport)
    assert await fetcher.fetch("http://[2606:4700::1111]:8080/a.wav") == b"ok"
    assert seen[-1].headers["host"] == "[2606:4700::1111]:8080" and asked == []  # a literal: no lookup
    assert await fetcher.fetch("https://bücher.example/a.wav") == b"ok"
    assert asked == ["xn--bcher-kva.example"]  # the IDNA form, as TLS and Host carry it
    assert seen[-1].headers["host"] == "xn--bcher-kva.example"
    assert seen[-1].extensions["sni_hostname"] == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("location", "refusal"),
    [
        ("http://xn--/", MediaURLRejected),
        ("http://audio.example:99999/", MediaURLRejected),
        ("http://audio.example:0/", MediaURLRejected),
        ("http://[::1", InvalidRequest),  # httpx itself refuses to follow it (RemoteProtocolError)
    ],
)
async def test_a_malformed_redirect_is_a_400(location: str, refusal: type[InvalidRequest]) -> None:
    fetcher, seen = _fetcher(lambda r: httpx.Response(302, headers={"location": location}))
    with pytest.raises(refusal):
        await fetcher.fetch("http://audio.example/a.wav")
    assert len(seen) == 1


def test_hostile_file_urls_are_refused_not_crashed(tmp_path) -> None:
    (tmp_path / "a.wav").write_bytes(b"small")
    fetcher, _ = _fetcher(lambda r: httpx.Response(500), tmp_root=str(tmp_path))
    for url in (f"file://{tmp_path}/a%00.wav", f"file://{tmp_path}/a.wav%0d%0a", "file://[::1/a.wav", f"file://{tmp_path}/" + "a" * 9000):  # fmt: skip
        with pytest.raises(MediaURLRejected):
            fetcher.read_local(url)
    with pytest.raises(InvalidRequest, match="cannot read"):  # ENAMETOOLONG: a 400, not a 500
        fetcher.read_local(f"file://{tmp_path}/{'a' * 300}.wav")
