"""Rebuild a Voxtral-style `tekken.json` from the tokenizer that ships inside `mistral_common`.

The real Voxtral tokenizer is 11-15 MB; tests and tiny checkpoints rebuild an equivalent one (same BPE ranks,
same special-token ids for everything TTS uses) from `tekken_240911.json`, exactly as the golden README
describes, so nothing that large needs to be committed.
"""

from __future__ import annotations

import json
from pathlib import Path

import mistral_common

_STANDARD_SPECIALS = [
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]", "[PREFIX]", "[MIDDLE]",
    "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]",
]  # fmt: skip
_AUDIO_SPECIALS = {
    24: "[AUDIO]",
    25: "[BEGIN_AUDIO]",
    26: "[OUTPUT_AUDIO]",
    34: "[TRANSCRIBE]",
    35: "[REPEAT_AUDIO_TEXT]",
    36: "[NEXT_AUDIO_TEXT]",
}
N_SPECIAL_TOKENS = 1000


def voxtral_tekken(voice_num_audio_tokens: dict[str, int]) -> dict:
    """The tekken v7 tokenizer dict with the audio block Voxtral TTS needs."""
    src = Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"
    base = json.loads(src.read_text(encoding="utf-8"))
    specials = []
    for rank in range(N_SPECIAL_TOKENS):
        name = _STANDARD_SPECIALS[rank] if rank < len(_STANDARD_SPECIALS) else _AUDIO_SPECIALS.get(rank)
        specials.append({"rank": rank, "token_str": name or f"<SPECIAL_{rank}>", "is_control": True})
    config = dict(base["config"], version="v7", default_num_special_tokens=N_SPECIAL_TOKENS)
    audio = {
        "sampling_rate": 24000,
        "frame_rate": 12.5,
        "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
        "chunk_length_s": 30.0,
        "voice_num_audio_tokens": dict(voice_num_audio_tokens),
    }
    return {"config": config, "vocab": base["vocab"], "special_tokens": specials, "audio": audio}


def write_voxtral_tekken(path: str | Path, voice_num_audio_tokens: dict[str, int]) -> Path:
    """Write :func:`voxtral_tekken` to ``path`` and return it."""
    path = Path(path)
    path.write_text(json.dumps(voxtral_tekken(voice_num_audio_tokens)), encoding="utf-8")
    return path


# Voxtral Mini 3B (2507): the special tokens its golden tekken.json names (golden README "Tokenizer").
_ASR_SPECIALS = {24: "[AUDIO]", 25: "[BEGIN_AUDIO]", 32: "[ARGS]", 33: "[CALL_ID]", 34: "[TRANSCRIBE]"}
ASR_AUDIO_SECTION = {
    "sampling_rate": 16000,
    "frame_rate": 12.5,
    "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
    "chunk_length_s": 30.0,
    "transcription_format": "instruct",
}


def voxtral_asr_tekken() -> dict:
    """The tekken v11 tokenizer dict of the Voxtral ASR golden cases: the first 130 072 BPE ranks of
    `tekken_240911.json`, 1000 specials, and the instruct-format audio section."""
    src = Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"
    base = json.loads(src.read_text(encoding="utf-8"))
    n_vocab = base["config"]["default_vocab_size"] - N_SPECIAL_TOKENS
    specials = []
    for rank in range(N_SPECIAL_TOKENS):
        name = _STANDARD_SPECIALS[rank] if rank < len(_STANDARD_SPECIALS) else _ASR_SPECIALS.get(rank)
        specials.append({"rank": rank, "token_str": name or f"<SPECIAL_{rank}>", "is_control": True})
    config = dict(base["config"], num_vocab_tokens=n_vocab, version="v11")
    return {
        "config": config,
        "vocab": base["vocab"][:n_vocab],
        "special_tokens": specials,
        "audio": ASR_AUDIO_SECTION,
    }


def write_voxtral_asr_tekken(path: str | Path) -> Path:
    """Write :func:`voxtral_asr_tekken` to ``path`` — byte-identical to the golden cases' file — and return it."""
    path = Path(path)
    text = json.dumps(voxtral_asr_tekken(), ensure_ascii=False, separators=(",", ":"))
    path.write_bytes(text.encode("utf-8"))
    return path
