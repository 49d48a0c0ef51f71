"""The golden cases laid out for a run outside the test suite: each case folder linked, and the tokenizer files
the repository leaves out (rebuilt bit-identically) added. Used by ``speechserve bench gpu``."""

from __future__ import annotations

import json
from pathlib import Path

LAYOUT_DIRS = {"checkpoint_mistral": "mistral", "checkpoint_hf": "hf", "dia_nari": "nari", "dia_hf": "hf"}
"""Checkpoint folders of a case → the ``layout`` ``run_case`` takes for them."""


# ---- laying the cases out -----------------------------------------------------------------------------------
def mirror(src: Path, dst: Path) -> list[Path]:
    """Every case folder of ``src`` (``<family>/<case>/``) linked under ``dst`` with its tokenizer rebuilt."""
    cases = []
    for family in sorted(p for p in src.iterdir() if p.is_dir()):
        for case in sorted(p for p in family.iterdir() if p.is_dir()):
            out = dst / family.name / case.name
            out.mkdir(parents=True, exist_ok=True)
            for item in case.iterdir():
                link = out / item.name
                if item.name == "checkpoint_mistral":  # a real folder: its tekken.json is added below
                    link.mkdir(exist_ok=True)
                    for part in item.iterdir():
                        _link(link / part.name, part)
                else:
                    _link(link, item)
            _add_tokenizer(out)
            cases.append(out)
    return cases


def _link(link: Path, target: Path) -> None:
    if not link.exists() and not link.is_symlink():
        link.symlink_to(target.resolve())


def _add_tokenizer(case: Path) -> None:
    """Rebuild the tokenizer a case names but the repository leaves out (bit-identical to the reference's)."""
    from speechserve.checkpoints.layout import detect_layout
    from speechserve.testing import tekken
    from speechserve.testing.checkpoint import RELEASE_VOICES
    from speechserve.testing.realtime_checkpoint import write_voxtral_realtime_tekken

    meta = json.loads((case / "case.json").read_text(encoding="utf-8"))
    if "tekken" in meta and not (case / meta["tekken"]).exists():  # Voxtral TTS: one file beside the cases
        params = json.loads((case / meta["model_dir"] / "params.json").read_text(encoding="utf-8"))
        voices = params["multimodal"]["audio_tokenizer_args"]["voice"]
        tekken.write_voxtral_tekken(case / meta["tekken"], {v: RELEASE_VOICES[v][1] for v in sorted(voices)})
    native = case / "checkpoint_mistral"
    if native.is_dir() and not (native / "tekken.json").exists():
        shared = case.parent / "tekken.json"  # one per family folder, linked into each case
        if not shared.exists():
            if detect_layout(native).architecture == "voxtral_realtime":
                write_voxtral_realtime_tekken(shared)
            else:
                tekken.write_voxtral_asr_tekken(shared)
        _link(native / "tekken.json", shared)


def layouts(case: Path) -> list[str | None]:
    """The layouts a case can run from (None: the case has one checkpoint)."""
    found = [layout for folder, layout in LAYOUT_DIRS.items() if (case / folder).is_dir()]
    return list(dict.fromkeys(found)) or [None]
