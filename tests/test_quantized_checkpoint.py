"""Pre-quantized checkpoints (`speechserve dev quantize`): saved int8, loaded back through `speechserve.load`
without quantizing again, computing bit for bit what quantizing the float checkpoint at load computes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import speechserve
from speechserve.checkpoints import quantized
from speechserve.cli import main
from speechserve.errors import CheckpointError, InvalidRequest, UnsupportedFeature
from speechserve.models.quantize import Int8Linear, is_int8


def _int8_layers(pipe) -> list[str]:  # type: ignore[no-untyped-def]
    return [n for n, m in pipe.model.named_modules() if is_int8(m)]


def _dtypes(root: Path) -> dict[str, torch.dtype]:
    out = {}
    for path in sorted(root.glob("*.safetensors")):
        if path.name != quantized.SIDECAR:
            with safe_open(str(path), framework="pt") as f:
                out |= {n: f.get_slice(n).get_dtype() for n in f.keys()}  # noqa: SIM118
    return out


@pytest.fixture(scope="module")
def tts_saved(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("tts_int8") / "ckpt"
    assert main(["dev", "quantize", str(tiny_checkpoint), str(dst), "--isq", "int8"]) == 0
    return dst


def test_tts_saved_equals_quantizing_at_load(tiny_checkpoint: Path, tts_saved: Path) -> None:
    at_load = speechserve.load(tiny_checkpoint, device="cpu", isq="int8")
    saved = speechserve.load(tts_saved, device="cpu")
    assert saved.isq == "int8" and _int8_layers(saved) == _int8_layers(at_load) != []
    opts = speechserve.SynthesisOptions(seed=3, max_frames=10, ignore_end=True)
    a = list(at_load.frames("Saved and loaded.", "casual_male", opts))
    b = list(saved.frames("Saved and loaded.", "casual_male", opts))
    assert len(a) == len(b) == 10
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.codes, y.codes) and torch.equal(x.hidden, y.hidden)  # bitwise


def test_tts_file_holds_int8_where_quantized(tiny_checkpoint: Path, tts_saved: Path) -> None:
    marker = json.loads((tts_saved / quantized.MARKER).read_text())
    tensors = [t for t in marker["modules"].values() if t is not None]
    assert marker["mode"] == "int8" and len(tensors) == len(marker["modules"])  # all in the weights file
    assert marker["dynamic"] and all(n.startswith("acoustic_transformer.") for n in marker["dynamic"])
    dtypes, before = _dtypes(tts_saved), _dtypes(tiny_checkpoint)
    assert dtypes.keys() == before.keys()  # same names: the family's own loader reads it
    assert all(dtypes[t] == "I8" for t in tensors)
    assert all(dtypes[n] == before[n] for n in dtypes if n not in tensors)
    assert not any(t.startswith("audio_tokenizer") for t in tensors)  # the family keeps its codec float
    assert (tts_saved / "tekken.json").is_file() and (tts_saved / "voice_embedding").is_dir()


@pytest.mark.parametrize(
    ("layout", "mode"), [("mistral", "int8"), ("hf", "int8"), ("mistral", "int8-dynamic")]
)
def test_asr_saved_equals_quantizing_at_load(
    layout: str, mode: str, tiny_asr_checkpoint: Path, tiny_asr_checkpoint_hf: Path, tmp_path: Path
) -> None:
    src = tiny_asr_checkpoint if layout == "mistral" else tiny_asr_checkpoint_hf  # hf: rope-permuted q/k rows
    assert quantized.save(src, tmp_path / "q", mode) == {"in_place": 23, "sidecar": 0}
    at_load = speechserve.load(src, device="cpu", isq=mode)
    saved = speechserve.load(tmp_path / "q", device="cpu")
    assert saved.isq == mode and _int8_layers(saved) == _int8_layers(at_load)
    kinds = {type(m) for n, m in saved.model.named_modules() if n in _int8_layers(saved)}
    assert (kinds == {Int8Linear}) == (mode == "int8")  # weight-only; int8-dynamic rebuilds fbgemm's Linears
    embeds = torch.randn(1, 7, saved.model.cfg.decoder.dim, generator=torch.Generator().manual_seed(0))
    h = [p.model.decoder(embeds, p.model.decoder.new_cache(1, 8), 0) for p in (at_load, saved)]
    assert torch.equal(h[0], h[1]) and torch.equal(at_load.model.logits(h[0]), saved.model.logits(h[1]))
    mel = torch.randn(1, 128, 3000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(at_load.model.encode_audio(mel), saved.model.encode_audio(mel))


def test_sidecar_path_is_equal_too(tiny_checkpoint: Path, tmp_path: Path, monkeypatch) -> None:
    """A Linear whose tensor cannot hold its int8 values (tied, or transformed by the loader) keeps the float
    tensor and has its values in the sidecar."""
    monkeypatch.setattr(quantized, "_find_in_checkpoint", lambda *a: {})
    counts = quantized.save(tiny_checkpoint, tmp_path / "q")
    assert counts["in_place"] == 0 and counts["sidecar"] > 0
    assert _dtypes(tmp_path / "q") == _dtypes(tiny_checkpoint)
    opts = speechserve.SynthesisOptions(seed=1, max_frames=4, ignore_end=True)
    a = speechserve.load(tiny_checkpoint, device="cpu", isq="int8").frames("Hi.", "casual_male", opts)
    b = speechserve.load(tmp_path / "q", device="cpu").frames("Hi.", "casual_male", opts)
    assert all(torch.equal(x.codes, y.codes) for x, y in zip(a, b, strict=True))


def test_what_is_refused(tiny_checkpoint: Path, tts_saved: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFeature, match="saved quantized"):
        speechserve.load(tts_saved, device="cpu", isq="fp8")
    assert speechserve.load(tts_saved, device="cpu", isq="int8").isq == "int8"  # the same mode is fine
    with pytest.raises(InvalidRequest, match="already quantized"):
        quantized.save(tts_saved, tmp_path / "again")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(InvalidRequest, match="not empty"):
        quantized.save(tiny_checkpoint, tmp_path / "busy")


def test_a_changed_file_is_a_checkpoint_error(tts_saved: Path, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    bad = tmp_path / "bad"
    shutil.copytree(tts_saved, bad)
    marker = json.loads((bad / quantized.MARKER).read_text())
    name = next(iter(marker["modules"].values()))
    tensors = load_file(str(bad / "consolidated.safetensors"))
    tensors[name] = tensors[name].float() / 3  # not integers any more
    save_file(tensors, str(bad / "consolidated.safetensors"))
    with pytest.raises(CheckpointError, match="does not hold int8 values"):
        speechserve.load(bad, device="cpu")
    (bad / quantized.MARKER).write_text(json.dumps({**marker, "version": 99}))
    with pytest.raises(CheckpointError, match="version 99"):
        speechserve.load(bad, device="cpu")
