"""Config schemas (strict), family detection, both Dia layouts, both DAC layouts, and where the codec comes from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import speechserve
from speechserve import registry
from speechserve.errors import CheckpointError, ModelNotFound, UnsupportedFeature
from speechserve.models.dia.config import GENERATION_V01, parse_config
from speechserve.models.dia.loader import CODEC_ENV, locate_codec
from speechserve.models.dia.options import DiaOptions

GOLDEN = Path(__file__).parents[1] / "golden" / "dia" / "case_a"


def _config(name: str) -> dict:
    return json.loads((GOLDEN / name).read_text())


def test_three_schemas_parse_to_one_config() -> None:
    hub = parse_config(_config("dia_nari/config.json"))
    hf = parse_config(_config("dia_hf/config.json"))
    v01 = parse_config(_config("dia_nari/config_v0_1_schema.json"))
    assert hub == hf
    assert (hub.bos_id, hub.eos_id, hub.pad_id, hub.delay_pattern) == (
        1026,
        1024,
        1025,
        (0, 8, 9, 10, 11, 12, 13, 14, 15),
    )
    assert (hub.encoder.hidden_size, hub.encoder.num_heads, hub.encoder.head_dim) == (64, 4, 32)
    assert (hub.decoder.num_heads, hub.decoder.num_kv_heads, hub.decoder.cross_hidden_size) == (8, 2, 64)
    assert v01.generation == GENERATION_V01 and v01.encoder == hub.encoder and v01.decoder == hub.decoder


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda c: c.update(sliding_window=4), "config.sliding_window"),
        (lambda c: c["decoder_config"].update(hidden_act="gelu"), "decoder_config.hidden_act"),
        (
            lambda c: c["encoder_config"].update(rope_scaling={"type": "linear"}),
            "encoder_config.rope_scaling",
        ),
        (lambda c: c.update(delay_pattern=[0, 1]), "delay_pattern"),
    ],
)
def test_unsupported_keys_and_values_are_named(edit, key: str) -> None:  # type: ignore[no-untyped-def]
    config = _config("dia_nari/config.json")
    edit(config)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        parse_config(config)


def test_claims_dia_and_nothing_else(
    dia_checkpoint: Path, tiny_checkpoint: Path, tiny_asr_checkpoint_hf: Path
) -> None:
    dia = registry.get("dia")
    assert dia.capabilities == frozenset({"speech"}) and dia.license == "Apache-2.0"
    for name in ("dia_nari/config.json", "dia_hf/config.json", "dia_nari/config_v0_1_schema.json"):
        assert registry.identify("hf", _config(name)) is dia
    assert not dia.claims("mistral", _config("dia_nari/config.json"))
    assert not dia.claims("mistral", json.loads((tiny_checkpoint / "params.json").read_text()))
    assert not dia.claims("hf", json.loads((tiny_asr_checkpoint_hf / "config.json").read_text()))
    assert registry.identify("hf", json.loads((dia_checkpoint / "config.json").read_text())) is dia


def test_loads_through_the_sdk(dia, dia_checkpoint: Path) -> None:
    files = sorted(p.name for p in dia_checkpoint.iterdir())
    assert files == ["config.json", "dac", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]  # fmt: skip
    assert dia.family is registry.get("dia") and dia.name == dia_checkpoint.name
    assert (dia.sample_rate, dia.samples_per_frame) == (44100, 512)
    assert dia.supports_voice_cloning and dia.voices == []
    assert dia.dac.decoder.conv2.weight.dtype == torch.float32


def test_nari_layout_and_descript_codec_load_the_same_model(dia, dia_checkpoint_nari: Path) -> None:
    assert sorted(p.name for p in dia_checkpoint_nari.iterdir()) == [
        "config.json",
        "dac",
        "model.safetensors",
    ]
    assert [p.name for p in (dia_checkpoint_nari / "dac").iterdir()] == ["weights.pth"]
    nari = speechserve.load(dia_checkpoint_nari, device="cpu")
    a, b = dia.model.state_dict(), nari.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    a, b = dia.dac.state_dict(), nari.dac.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=False)
    return dst


def test_missing_unexpected_and_misshapen_tensors_are_listed(
    dia_checkpoint_nari: Path, tmp_path: Path
) -> None:
    root = _copy(dia_checkpoint_nari, tmp_path / "ckpt")
    tensors = load_file(str(root / "model.safetensors"))
    tensors["decoder.extra.weight"] = tensors.pop("decoder.norm.weight")
    save_file(tensors, str(root / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"1 missing tensor\(s\): decoder\.norm\.weight.*unexpected tensor\(s\): decoder\.extra\.weight"):  # fmt: skip
        speechserve.load(root, device="cpu")
    tensors["decoder.norm.weight"] = torch.ones(7)
    del tensors["decoder.extra.weight"]
    save_file(tensors, str(root / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"model\.decoder\.norm\.weight has shape \(7,\)"):
        speechserve.load(root, device="cpu")


def test_v01_checkpoints_are_recognised_and_refused(dia_checkpoint_nari: Path, tmp_path: Path) -> None:
    root = _copy(dia_checkpoint_nari, tmp_path / "v01")
    v01 = _config("dia_nari/config_v0_1_schema.json")
    (root / "config.json").write_text(json.dumps(v01))
    with pytest.raises(UnsupportedFeature, match=r"Dia-1\.6B-0626"):
        speechserve.load(root, device="cpu")


def test_codec_location(dia_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert locate_codec(dia_checkpoint) == dia_checkpoint / "dac"
    bare = tmp_path / "bare"
    bare.mkdir()
    monkeypatch.setenv(CODEC_ENV, str(dia_checkpoint / "dac"))
    assert locate_codec(bare) == (dia_checkpoint / "dac").resolve()
    monkeypatch.setenv(CODEC_ENV, "descript/dac_44khz")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelNotFound) as info:
        locate_codec(bare)
    message = str(info.value)
    assert (
        "\n" not in message and "no dac/ folder" in message and CODEC_ENV in message and "offline" in message
    )


def test_a_decoder_only_codec_loads_and_refuses_cloning(dia_checkpoint: Path, tmp_path: Path) -> None:
    root = _copy(dia_checkpoint, tmp_path / "no_encoder")
    tensors = load_file(str(root / "dac" / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if not k.startswith("encoder.")}, str(root / "dac" / "model.safetensors"))  # fmt: skip
    pipe = speechserve.load(root, device="cpu")
    assert not pipe.supports_voice_cloning
    clip = (np.zeros(4096, np.float32), 44100)
    with pytest.raises(UnsupportedFeature, match="DAC encoder") as info:
        pipe.synthesize("[S1] Hi.", DiaOptions(ref_text="[S1] Ref."), ref_audio=clip)
    assert info.value.param == "ref_audio"


def test_the_family_writes_random_checkpoints(tmp_path: Path) -> None:
    family = registry.get("dia")
    root = family.write_random(tmp_path / "w", preset="tiny", seed=3)
    assert registry.identify("hf", json.loads((root / "config.json").read_text())) is family
    with pytest.raises(KeyError):
        family.write_random(tmp_path / "x", preset="huge")
