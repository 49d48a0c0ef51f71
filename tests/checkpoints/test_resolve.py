"""Tests for speechserve.checkpoints.resolve: local dirs, a hand-built HF cache, offline and failed downloads.

Nothing here touches the network: HF_HUB_OFFLINE is on by default (also in huggingface_hub's constants, so
its HTTP layer would refuse any request), and the download tests replace the non-local snapshot_download.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace

import httpx
import huggingface_hub
import pytest
from huggingface_hub import constants as hf_constants
from huggingface_hub.utils import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

from speechserve.checkpoints import resolve as resolve_mod
from speechserve.checkpoints.resolve import DEFAULT_ALLOW_PATTERNS, hub_cache_dir, resolve_model_dir
from speechserve.errors import ModelNotFound, SpeechServeError

REPO = "owner/name"
MAIN_HASH = "a" * 40
V2_HASH = "b" * 40


@pytest.fixture(autouse=True)
def _isolated_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the hub cache into tmp_path and force offline mode everywhere."""
    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    return cache


def _add_snapshot(cache: Path, repo_id: str, commit: str, ref: str | None, files: dict[str, str]) -> Path:
    """Lay out one snapshot exactly like huggingface_hub: blobs/, snapshots/<commit>/ symlinks, refs/<ref>."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        blob = repo_dir / "blobs" / hashlib.sha256(content.encode()).hexdigest()
        blob.write_text(content)
        target = snapshot / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(os.path.relpath(blob, target.parent))
        except OSError:  # no symlink support: huggingface_hub then copies the blob
            target.write_text(content)
    if ref is not None:
        (repo_dir / "refs").mkdir(exist_ok=True)
        (repo_dir / "refs" / ref).write_text(commit)  # written without a trailing newline, like the hub
    return snapshot


def _assert_one_line(exc: ModelNotFound) -> str:
    message = str(exc)
    assert "\n" not in message and "\r" not in message
    return message


def _repo_not_found(cls: type[Exception] = RepositoryNotFoundError) -> Exception:
    response = SimpleNamespace(headers={}, request=None, status_code=404)
    return cls(
        "404 Client Error.\nRepository Not Found for url: https://huggingface.co/api/models/x",
        response=response,
    )


def _go_online(monkeypatch: pytest.MonkeyPatch, download_error: Exception | None, calls: list[dict]) -> None:
    """Allow downloads, but replace the network call of snapshot_download; local lookups stay real."""
    real = huggingface_hub.snapshot_download
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    def fake(repo_id: str, **kwargs: object) -> str:
        if kwargs.get("local_files_only"):
            return real(repo_id, **kwargs)
        calls.append({"repo_id": repo_id, **kwargs})
        if download_error is not None:
            raise download_error
        return str(Path(str(kwargs["cache_dir"])) / "downloaded")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)


def test_local_directory_is_returned(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    assert resolve_model_dir(ckpt) == ckpt.resolve()
    assert resolve_model_dir(str(ckpt)) == ckpt.resolve()


def test_existing_relative_owner_name_dir_wins_over_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "owner" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert resolve_model_dir(REPO) == (tmp_path / "owner" / "name").resolve()


@pytest.mark.parametrize(
    "ref", ["/definitely/not/here", "./missing_ckpt", "../missing_ckpt", "a/b/c", "~/nope_x1"]
)
def test_missing_path_raises(ref: str) -> None:
    with pytest.raises(ModelNotFound, match="does not exist") as info:
        resolve_model_dir(ref)
    message = _assert_one_line(info.value)
    assert os.path.basename(ref) in message
    assert isinstance(info.value, SpeechServeError)


def test_file_instead_of_directory(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    with pytest.raises(ModelNotFound, match="not a directory"):
        resolve_model_dir(path)


def test_bare_name_is_neither_path_nor_hub_id() -> None:
    with pytest.raises(ModelNotFound, match="owner/name"):
        resolve_model_dir("voxtral_not_a_dir")


def test_cached_snapshot_found_offline(_isolated_hub: Path) -> None:
    snapshot = _add_snapshot(_isolated_hub, REPO, MAIN_HASH, "main", {"params.json": "{}"})
    result = resolve_model_dir(REPO)
    assert result == snapshot.resolve()
    assert (result / "params.json").read_text() == "{}"


@pytest.mark.parametrize("how", ["suffix", "kwarg", "commit"])
def test_revision_picks_snapshot(_isolated_hub: Path, how: str) -> None:
    _add_snapshot(_isolated_hub, REPO, MAIN_HASH, "main", {"params.json": "{}"})
    v2 = _add_snapshot(_isolated_hub, REPO, V2_HASH, "v2", {"params.json": '{"v": 2}'})
    if how == "suffix":
        result = resolve_model_dir(f"{REPO}@v2")
    elif how == "kwarg":
        result = resolve_model_dir(REPO, revision="v2")
    else:
        result = resolve_model_dir(f"{REPO}@{V2_HASH}")
    assert result == v2.resolve()


def test_conflicting_revisions(_isolated_hub: Path) -> None:
    with pytest.raises(ModelNotFound, match="Conflicting"):
        resolve_model_dir(f"{REPO}@v2", revision="main")


def test_cache_dir_argument_and_hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other_cache"
    snapshot = _add_snapshot(other, REPO, MAIN_HASH, "main", {"params.json": "{}"})
    assert resolve_model_dir(REPO, cache_dir=str(other)) == snapshot.resolve()
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == (tmp_path / "home" / "hub").resolve()


def test_uncached_offline_message(_isolated_hub: Path) -> None:
    with pytest.raises(ModelNotFound) as info:
        resolve_model_dir("someone/missing-model")
    message = _assert_one_line(info.value)
    assert "someone/missing-model" in message
    assert str(_isolated_hub.resolve()) in message
    assert "offline" in message
    assert "--model /path/to/checkpoint" in message
    assert isinstance(info.value.__cause__, LocalEntryNotFoundError)


def test_allow_download_false_never_downloads(_isolated_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    _go_online(monkeypatch, None, calls)
    with pytest.raises(ModelNotFound, match="allow_download=False") as info:
        resolve_model_dir(REPO, allow_download=False)
    _assert_one_line(info.value)
    assert calls == []


def test_download_uses_default_patterns(_isolated_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    _go_online(monkeypatch, None, calls)
    result = resolve_model_dir(f"{REPO}@v3")
    assert result == (_isolated_hub / "downloaded").resolve()
    (call,) = calls
    assert call["repo_id"] == REPO and call["revision"] == "v3"
    assert call["allow_patterns"] == list(DEFAULT_ALLOW_PATTERNS)
    assert "*.pt" not in call["allow_patterns"] and "voice_embedding/*" in call["allow_patterns"]
    assert Path(str(call["cache_dir"])) == _isolated_hub.resolve()
    calls.clear()
    resolve_model_dir(REPO, allow_patterns=["params.json"])
    assert calls[0]["allow_patterns"] == ["params.json"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_repo_not_found(), "does not exist on the Hub"),
        (_repo_not_found(GatedRepoError), "gated"),
        (httpx.ConnectError("[Errno 111] Connection refused\nmore"), "network error"),
        (ConnectionError("Name or service not known"), "network error"),
        (RuntimeError("boom\nline two"), "RuntimeError: boom line two"),
    ],
)
def test_download_failure_is_one_line(
    _isolated_hub: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, expected: str
) -> None:
    calls: list[dict] = []
    _go_online(monkeypatch, error, calls)
    with pytest.raises(ModelNotFound) as info:
        resolve_model_dir(REPO)
    message = _assert_one_line(info.value)
    assert "download failed because" in message and expected in message
    assert REPO in message and str(_isolated_hub.resolve()) in message
    assert "--model /path/to/checkpoint" in message
    assert info.value.__cause__ is error
    assert len(calls) == 1


def test_wrapped_connection_error(_isolated_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """snapshot_download wraps connection errors in LocalEntryNotFoundError; the cause is reported."""
    try:
        raise LocalEntryNotFoundError("An error happened\nPlease check") from httpx.ConnectTimeout(
            "timed out"
        )
    except LocalEntryNotFoundError as exc:
        wrapped = exc
    _go_online(monkeypatch, wrapped, [])
    with pytest.raises(ModelNotFound, match=r"network error \(ConnectTimeout: timed out\)") as info:
        resolve_model_dir(REPO)
    _assert_one_line(info.value)


def test_offline_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_mod._is_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not resolve_mod._is_offline()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    assert not resolve_mod._is_offline()
