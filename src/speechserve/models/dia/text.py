"""Text as Dia reads it (spec §4): UTF-8 bytes, the speaker tags ``[S1]`` → 1 and ``[S2]`` → 2, nothing else.

Nonverbal tags such as ``(laughs)`` are just bytes (the model learned them). No BOS/EOS on the text side;
the unconditional branch of classifier-free guidance reads as many zero bytes as the text has.
"""

from __future__ import annotations

from speechserve.errors import InvalidRequest

SPEAKER_TAGS = ((b"[S1]", b"\x01"), (b"[S2]", b"\x02"))

NONVERBALS = (
    "(laughs)", "(clears throat)", "(sighs)", "(gasps)", "(coughs)", "(singing)", "(sings)", "(mumbles)",
    "(beep)", "(groans)", "(sniffs)", "(claps)", "(screams)", "(inhales)", "(exhales)", "(applause)",
    "(burps)", "(humming)", "(sneezes)", "(chuckle)", "(whistles)",
)  # fmt: skip
"""The nonverbal tags the Dia README lists as recognised (others may produce artifacts)."""


def encode_text(text: str, max_bytes: int) -> list[int]:
    """Byte ids of ``text``; ``InvalidRequest`` when it is empty or longer than the encoder reads (nari would
    silently cut it)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("input text must not be empty", param="input")
    data = text.encode("utf-8")
    for tag, byte in SPEAKER_TAGS:
        data = data.replace(tag, byte)
    if len(data) > max_bytes:
        raise InvalidRequest(
            f"input is {len(data)} bytes long (speaker tags count 1); Dia reads at most {max_bytes}",
            param="input",
        )
    return list(data)
