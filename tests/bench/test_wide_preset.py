"""The "wide" random-checkpoint preset of every family: the release's widths with a few layers, at most ~3 GB.

Checked from the parsed configs and a model built on the meta device: no weights are drawn or written."""

from __future__ import annotations

import pytest
import torch

from speechserve.testing import asr_checkpoint, checkpoint, dia_checkpoint, realtime_checkpoint

MAX_BYTES = 3.0e9


def _bytes(*modules: torch.nn.Module, per_value: int) -> float:
    return sum(p.numel() for m in modules for p in m.parameters()) * per_value


def test_voxtral_tts() -> None:
    from speechserve.models.voxtral_tts import VoxtralTTS
    from speechserve.models.voxtral_tts.config import parse_params

    wide, full = (
        parse_params(checkpoint.preset_params("wide")),
        parse_params(checkpoint.preset_params("full")),
    )
    assert (wide.backbone.dim, wide.backbone.hidden_dim, wide.backbone.n_layers) == (3072, 9216, 4)
    assert wide.backbone == type(full.backbone)(**{**vars(full.backbone), "n_layers": 4})
    assert wide.flow == full.flow and wide.codec == full.codec  # the real flow head and codec
    with torch.device("meta"):
        assert _bytes(VoxtralTTS(wide), per_value=2) <= MAX_BYTES  # bf16 on disk


@pytest.mark.parametrize("writer", [asr_checkpoint, realtime_checkpoint], ids=["asr", "realtime"])
def test_speech_to_text(writer) -> None:  # type: ignore[no-untyped-def]
    if writer is asr_checkpoint:
        from speechserve.models.voxtral_asr import VoxtralASR as Model
        from speechserve.models.voxtral_asr.config import parse_params
    else:
        from speechserve.models.voxtral_realtime.config import parse_params
        from speechserve.models.voxtral_realtime.model import VoxtralRealtime as Model
    wide, full = parse_params(writer.preset_params("wide")), parse_params(writer.preset_params("full"))
    for part in ("encoder", "decoder"):
        w, f = getattr(wide, part), getattr(full, part)
        assert (w.dim, w.hidden_dim, w.n_heads, w.head_dim) == (f.dim, f.hidden_dim, f.n_heads, f.head_dim)
        assert 2 <= w.n_layers <= 4 < f.n_layers
    assert (
        wide.decoder.n_kv_heads == full.decoder.n_kv_heads
        and wide.decoder.vocab_size == full.decoder.vocab_size
    )
    with torch.device("meta"):
        assert _bytes(Model(wide), per_value=2) <= MAX_BYTES


def test_dia() -> None:
    from speechserve.models.dia.config import parse_config
    from speechserve.models.dia.dac import DAC
    from speechserve.models.dia.model import Dia

    wide, full = (parse_config(dia_checkpoint.hub_config(p)) for p in ("wide", "full"))
    for part in ("encoder", "decoder"):
        w, f = vars(getattr(wide, part)), vars(getattr(full, part))
        layers = next(k for k in w if "layers" in k)
        assert {k: v for k, v in w.items() if k != layers} == {k: v for k, v in f.items() if k != layers}
        assert 2 <= w[layers] <= 4 < f[layers]
    assert dia_checkpoint.dac_config("wide") == dia_checkpoint.dac_config("full")
    with torch.device("meta"):
        model, dac = Dia(wide), DAC(dia_checkpoint.dac_config("wide"))
        assert _bytes(model, dac, per_value=4) <= MAX_BYTES  # written in fp32
