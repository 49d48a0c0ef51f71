"""Accept OpenAI-style chat messages with audio and turn their audio parts into 16 kHz samples.

Content parts: ``{"type": "text", "text": ...}``; ``{"type": "input_audio", "input_audio": {"data": <base64>,
"format": "wav"}}``; ``{"type": "audio_url", "audio_url": {"url": "data:audio/...;base64,..."}}``; and, from
Python, ``{"type": "audio", "audio": <bytes | path | (samples, rate)>}``. Fetching http(s) or file:// URLs is
the server's job (it applies the network and file policies), so here only ``data:`` URLs are accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from speechserve.errors import InvalidRequest

AudioLoader = Callable[[Any, str], np.ndarray]  # (payload, kind) → samples; kind: "base64" or "input"


def _audio_part(part: dict[str, Any], load: AudioLoader) -> np.ndarray:
    kind = part.get("type")
    if kind == "input_audio":
        payload = part.get("input_audio")
        data = payload.get("data") if isinstance(payload, dict) else payload
        if isinstance(data, (bytes, bytearray)):
            return load(bytes(data), "input")
        if not isinstance(data, str):
            raise InvalidRequest("input_audio.data must be a base64 string", "messages")
        return load(data, "base64")
    if kind == "audio_url":
        ref = part.get("audio_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        if not isinstance(url, str) or not url[:5].lower() == "data:":
            raise InvalidRequest(
                "audio_url must be a data: URL here (the server fetches http(s) URLs)", "messages"
            )
        return load(url, "base64")
    if kind == "audio":
        return load(part.get("audio"), "input")
    raise InvalidRequest(f"unsupported content part type {kind!r}", "messages")


def normalize_messages(
    messages: list[dict[str, Any]], load: AudioLoader
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Messages with every audio part replaced by ``{"type": "audio", "samples": ...}``, and those samples."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty list", "messages")
    out, audios = [], []
    for message in messages:
        if not isinstance(message, dict) or "role" not in message:
            raise InvalidRequest("every message needs a role and content", "messages")
        content = message.get("content")
        if isinstance(content, str) or content is None:
            out.append({"role": message["role"], "content": content or ""})
            continue
        if not isinstance(content, list):
            raise InvalidRequest("message content must be a string or a list of parts", "messages")
        parts = []
        for part in content:
            if not isinstance(part, dict):
                raise InvalidRequest("content parts must be objects with a type", "messages")
            if part.get("type") == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            else:
                samples = _audio_part(part, load)
                audios.append(samples)
                parts.append({"type": "audio", "samples": samples})
        out.append({"role": message["role"], "content": parts})
    return out, audios
