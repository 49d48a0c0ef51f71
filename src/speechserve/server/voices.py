"""The voice catalogue of a served model: presets with language/gender metadata, aliases, resolution.

Preset names encode their metadata: ``fr_female`` is French and female, ``casual_male`` (no
language prefix) is English and male. Aliases (OpenAI's ``alloy``, ``nova`` … by default) map to presets;
an alias whose preset the checkpoint lacks is dropped at start-up with a warning, so every listed voice
works. ``GET /v1/audio/voices`` (``voices_router.py``) lists the catalogue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from speechserve.errors import UnknownVoice

log = logging.getLogger("speechserve.server")

LANGUAGES = {
    "en": "English", "fr": "French", "es": "Spanish", "de": "German", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "ar": "Arabic", "hi": "Hindi",
}  # fmt: skip
_GENDERS = ("female", "male")


@dataclass(frozen=True)
class VoiceInfo:
    """One entry of ``GET /v1/audio/voices``."""

    id: str
    name: str
    language: str
    gender: str | None
    license: str
    aliases: tuple[str, ...] = ()
    object: str = "voice"


def describe_preset(preset: str) -> tuple[str, str | None, str]:
    """``(language code, gender, display name)`` of a preset name such as ``fr_female`` or ``casual_male``."""
    parts = preset.lower().split("_")
    gender = parts[-1] if parts[-1] in _GENDERS else None
    prefix = parts[0] if len(parts) > 1 else ""
    language = prefix if prefix in LANGUAGES else "en"
    style = LANGUAGES[prefix] if prefix in LANGUAGES else " ".join(p for p in parts if p not in _GENDERS)
    name = " ".join(p for p in (style.capitalize(), gender) if p) or preset
    return language, gender, name


class VoiceCatalog:
    """Presets and aliases of one model. Lifetime: the app."""

    def __init__(
        self, presets: list[str], aliases: dict[str, str], default: str | None, license: str
    ) -> None:
        self.presets = sorted(p.lower() for p in presets)
        self.license = license
        self.aliases = {a: t for a, t in aliases.items() if t in self.presets and a not in self.presets}
        dropped = sorted(set(aliases) - set(self.aliases))
        if dropped:
            log.warning("voice aliases without a matching preset were dropped: %s", ", ".join(dropped))
        self.default = self.resolve(default) if default else None

    def resolve(self, voice: str | None) -> str | None:
        """Preset for a requested voice name (case-insensitive; aliases followed); None → model default."""
        if voice is None:
            return self.default
        name = voice.strip().lower()
        if name in self.presets:
            return name
        if name in self.aliases:
            return self.aliases[name]
        raise UnknownVoice(voice, [*self.presets, *self.aliases])

    def list(self, language: str | None = None) -> list[VoiceInfo]:
        out = []
        for preset in self.presets:
            lang, gender, name = describe_preset(preset)
            if language is not None and lang != language.lower():
                continue
            aliases = tuple(sorted(a for a, t in self.aliases.items() if t == preset))
            out.append(VoiceInfo(preset, name, lang, gender, self.license, aliases))
        return out
