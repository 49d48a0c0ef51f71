"""Strict reading of checkpoint config dicts: every key is either used, knowingly ignored, or an error."""

from __future__ import annotations

from typing import Any


def take_keys(d: dict[str, Any], known: set[str], ignored: set[str], where: str) -> dict[str, Any]:
    """The ``known`` entries of ``d``; ``ValueError`` naming the first key that is neither known nor ignored."""
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - known - ignored)
    if unknown:
        raise ValueError(
            f"unsupported key {where}.{unknown[0]} in the checkpoint config (unknown keys: {unknown})"
        )
    return {k: v for k, v in d.items() if k in known}


def require(cond: bool, key: str, value: Any) -> None:
    """``ValueError`` naming ``key`` unless ``cond`` (a supported key with a value we cannot run)."""
    if not cond:
        raise ValueError(f"unsupported value {value!r} for checkpoint config key {key}")
