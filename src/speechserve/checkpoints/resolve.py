"""Resolve a user's model reference (local directory or Hugging Face repo id) to a local checkpoint directory.

Order: an existing local directory wins; then a ``owner/name[@revision]`` id is looked up in the Hugging Face
cache without touching the network; only then, if allowed and not offline, the speech-relevant files are
downloaded.  Every failure becomes one single-line :class:`~speechserve.errors.ModelNotFound` that says what
was tried and how to fix it.  ``huggingface_hub`` is imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from speechserve.errors import ModelNotFound

#: Files a speech checkpoint needs; ``*.pt`` files are only fetched under ``voice_embedding/``.
DEFAULT_ALLOW_PATTERNS: tuple[str, ...] = (
    "params.json",
    "config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "tekken.json",
    "tokenizer*",
    "voice_embedding/*",
    "generation_config.json",
    "preprocessor_config.json",
    "*.model",
)

_HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*)(?:@(?P<rev>[^@\s]+))?$")
_TRUE = {"1", "ON", "YES", "TRUE"}
_NETWORK_ERRORS = {"ConnectError", "ConnectTimeout", "ConnectionError", "NetworkError", "TimeoutException"}


def _looks_like_path(ref: str) -> bool:
    """True when ``ref`` is written like a filesystem path rather than a hub id."""
    if ref in (".", "..") or ref.startswith(("/", "./", "../", "~", "." + os.sep, ".." + os.sep)):
        return True
    has_sep = os.sep in ref or "/" in ref or (os.altsep is not None and os.altsep in ref)
    return has_sep and _HUB_ID.match(ref) is None


def _is_offline() -> bool:
    """Offline mode, read from the environment at call time (falling back to huggingface_hub's constant)."""
    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")
    if env is not None:
        return env.strip().upper() in _TRUE
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The Hugging Face hub cache location, honouring ``HF_HUB_CACHE`` / ``HF_HOME`` as set right now."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser().resolve()
    env = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if env:
        return Path(os.path.expandvars(env)).expanduser().resolve()
    if os.environ.get("HF_HOME"):
        return (Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub").resolve()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser().resolve()


def _one_line(text: str, limit: int = 160) -> str:
    """Collapse whitespace (newlines included) and truncate, so messages stay on one line."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failure_reason(exc: BaseException) -> str:
    """A short, single-line description of why a hub download failed."""
    from huggingface_hub.utils import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, GatedRepoError):
        return "the repository is gated (accept its terms on huggingface.co, then `hf auth login`)"
    if isinstance(exc, RepositoryNotFoundError):
        return "the repository does not exist on the Hub or is private (check the id, or `hf auth login`)"
    if isinstance(exc, RevisionNotFoundError):
        return "the revision does not exist on the Hub"
    cause = exc.__cause__ if isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ else exc
    if isinstance(cause, OfflineModeIsEnabled):
        return "huggingface_hub offline mode is enabled"
    if any(cls.__name__ in _NETWORK_ERRORS for cls in type(cause).__mro__):
        return f"network error ({type(cause).__name__}: {_one_line(cause, 100)})"
    return f"{type(exc).__name__}: {_one_line(exc, 100)}"


def resolve_model_dir(
    ref: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_dir: str | None = None,
    allow_download: bool = True,
    allow_patterns: list[str] | None = None,
) -> Path:
    """Turn a model reference into a local checkpoint directory.

    Args:
        ref: a local checkpoint directory, or a Hugging Face repo id ``owner/name`` (optionally
            ``owner/name@revision``).
        revision: branch, tag or commit hash of the hub repo; must agree with an ``@revision`` suffix.
        cache_dir: hub cache to use instead of ``HF_HUB_CACHE`` / ``HF_HOME``.
        allow_download: if False, never go to the network, only use the local cache.
        allow_patterns: files to fetch when downloading; defaults to :data:`DEFAULT_ALLOW_PATTERNS`.

    Returns:
        The absolute path of the checkpoint directory (a cache snapshot directory for hub ids).

    Raises:
        ModelNotFound: with a single-line message saying what was checked and how to fix it; the
            underlying huggingface_hub / network error is chained as ``__cause__``.
    """
    text = os.fspath(ref)
    local = Path(text).expanduser()
    if local.is_dir():
        return local.resolve()
    local_abs = local.absolute()
    if local.exists():
        raise ModelNotFound(
            f"Model path {str(local_abs)!r} exists but is not a directory; pass a checkpoint directory."
        )
    match = None if _looks_like_path(text) else _HUB_ID.match(text)
    if match is None:
        hint = "" if _looks_like_path(text) else " and is not a Hugging Face repo id of the form owner/name"
        raise ModelNotFound(
            f"Model directory {str(local_abs)!r} does not exist{hint}; "
            "pass an existing checkpoint directory with --model /path/to/checkpoint."
        )
    repo_id, suffix_rev = match.group("repo"), match.group("rev")
    if suffix_rev and revision and suffix_rev != revision:
        raise ModelNotFound(
            f"Conflicting revisions for {repo_id!r}: {suffix_rev!r} in the id vs revision={revision!r}."
        )
    revision = revision or suffix_rev
    patterns = list(allow_patterns) if allow_patterns is not None else list(DEFAULT_ALLOW_PATTERNS)
    cache = hub_cache_dir(cache_dir)
    rev_text = revision or "main"

    import huggingface_hub
    from huggingface_hub import errors as hf_errors
    from huggingface_hub.utils import LocalEntryNotFoundError

    incomplete = getattr(hf_errors, "IncompleteSnapshotError", ())
    kwargs = {"revision": revision, "cache_dir": str(cache), "allow_patterns": patterns}
    try:
        return Path(huggingface_hub.snapshot_download(repo_id, local_files_only=True, **kwargs)).resolve()
    except incomplete as exc:
        cache_note, error = f"the cached snapshot of revision {rev_text!r} is incomplete", exc
    except LocalEntryNotFoundError as exc:
        cache_note, error = f"revision {rev_text!r} is not cached", exc
    except Exception as exc:  # unreadable cache, invalid id, ...
        cache_note, error = f"cache lookup failed ({_failure_reason(exc)})", exc

    if not allow_download:
        download_note = "download skipped because allow_download=False"
    elif _is_offline():
        download_note = "download skipped because offline mode is on (HF_HUB_OFFLINE=1)"
    else:
        try:
            return Path(huggingface_hub.snapshot_download(repo_id, **kwargs)).resolve()
        except Exception as exc:  # anything the hub or the network throws becomes ModelNotFound
            download_note, error = f"download failed because {_failure_reason(exc)}", exc

    message = (
        f"Model {text!r} not found: no local directory at {str(local_abs)!r}; "
        f"Hugging Face cache checked at {str(cache)!r} ({cache_note}); {download_note}. "
        "Fix: pass a local directory with --model /path/to/checkpoint, or run "
        f"`hf download {repo_id}` (huggingface-cli download) on a machine with network and point "
        "HF_HUB_CACHE at that cache."
    )
    raise ModelNotFound(_one_line(message, limit=2000)) from error
