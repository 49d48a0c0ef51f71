"""Loading Voxtral ASR checkpoints: both layouts to identical tensors, dispatch, and loud failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import speechserve
from speechserve.checkpoints.layout import detect_layout
from speechserve.errors import CheckpointError, UnsupportedFeature
from speechserve.models.voxtral_asr.config import load_config, parse_hf_config, parse_params
from speechserve.models.voxtral_asr.loader import hf_to_native_rope, native_to_hf_rope
from speechserve.models.voxtral_asr.pipeline import VoxtralASRPipeline

GOLDEN = Path(__file__).parents[1] / "golden" / "voxtral_asr" / "mini3b"


def _state(pipe: VoxtralASRPipeline) -> dict[str, torch.Tensor]:
    return pipe.model.state_dict()


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name


def test_golden_layouts_load_identical_tensors(voxtral_asr_golden: Path) -> None:
    case = voxtral_asr_golden / "mini3b"
    tekken = case / "checkpoint_mistral" / "tekken.json"
    native = speechserve.load(case / "checkpoint_mistral", device="cpu")
    hf = speechserve.load(case / "checkpoint_hf", device="cpu", tokenizer=tekken)
    assert isinstance(native, VoxtralASRPipeline) and isinstance(hf, VoxtralASRPipeline)
    assert (
        load_config(case / "checkpoint_mistral", "mistral").decoder
        == load_config(case / "checkpoint_hf", "hf").decoder
    )
    _assert_identical(_state(native), _state(hf))
    assert len(_state(native)) == 59  # every native tensor, nothing else (HF's embed_positions is derived)


def test_tiny_sharded_hf_equals_native(tiny_asr, tiny_asr_checkpoint_hf: Path) -> None:
    assert detect_layout(tiny_asr_checkpoint_hf).weights[1].name == "model-00002-of-00002.safetensors"
    hf = speechserve.load(tiny_asr_checkpoint_hf, device="cpu")
    _assert_identical(_state(tiny_asr), _state(hf))


def test_bf16_load_keeps_checkpoint_values(tiny_asr_checkpoint: Path, tiny_asr) -> None:
    bf16 = speechserve.load(tiny_asr_checkpoint, device="cpu", dtype="bfloat16")
    for name, t in _state(bf16).items():
        assert t.dtype == torch.bfloat16 and torch.equal(t.float(), _state(tiny_asr)[name]), name


def test_rope_permutation_round_trip() -> None:
    w = torch.randn(4 * 16, 8)
    assert torch.equal(hf_to_native_rope(native_to_hf_rope(w, 4), 4), w)
    # native row 2t (pair t, first half) ↔ HF row t; native row 2t+1 ↔ HF row t + head_dim/2
    hf = native_to_hf_rope(w, 4)
    assert torch.equal(hf[3], w[6]) and torch.equal(hf[3 + 8], w[7]) and torch.equal(hf[16 + 1], w[16 + 2])


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=False)
    return dst


def test_missing_and_unexpected_tensors_are_listed(tiny_asr_checkpoint: Path, tmp_path: Path) -> None:
    root = _copy(tiny_asr_checkpoint, tmp_path / "ckpt")
    weights = root / "consolidated.safetensors"
    tensors = load_file(str(weights))
    del tensors["layers.1.attention.wk.weight"]
    tensors["mm_whisper_embeddings.whisper_encoder.transformer.layers.0.attention.wk.bias"] = torch.zeros(32)
    save_file(tensors, str(weights))
    with pytest.raises(CheckpointError) as err:
        speechserve.load(root, device="cpu")
    msg = str(err.value)
    assert "1 missing tensor(s): layers.1.attention.wk.weight" in msg
    assert (
        "1 unexpected tensor(s): mm_whisper_embeddings.whisper_encoder.transformer.layers.0.attention.wk.bias"
        in msg
    )


def test_hf_missing_tensor_uses_hub_names(tiny_asr_checkpoint_hf: Path, tmp_path: Path) -> None:
    root = _copy(tiny_asr_checkpoint_hf, tmp_path / "hf")
    index = json.loads((root / "model.safetensors.index.json").read_text())
    name = "audio_tower.layers.0.self_attn.out_proj.weight"
    shard = root / index["weight_map"].pop(name)
    tensors = load_file(str(shard))
    del tensors[name]
    save_file(tensors, str(shard))
    (root / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=rf"missing tensor\(s\): {name}"):
        speechserve.load(root, device="cpu")


def test_hf_index_naming_a_missing_shard(tiny_asr_checkpoint_hf: Path, tmp_path: Path) -> None:
    root = _copy(tiny_asr_checkpoint_hf, tmp_path / "hf")
    index = json.loads((root / "model.safetensors.index.json").read_text())
    first = next(iter(index["weight_map"]))
    index["weight_map"][first] = "model-00003-of-00003.safetensors"
    (root / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"model-00003-of-00003\.safetensors"):
        speechserve.load(root, device="cpu")


def test_wrong_shape_is_reported(tiny_asr_checkpoint: Path, tmp_path: Path) -> None:
    root = _copy(tiny_asr_checkpoint, tmp_path / "ckpt")
    params = json.loads((root / "params.json").read_text())
    params["hidden_dim"] = 48
    (root / "params.json").write_text(json.dumps(params))
    with pytest.raises(CheckpointError, match=r"layers\.0\.feed_forward\.w1\.weight has shape \(64, 32\)"):
        speechserve.load(root, device="cpu")


def test_unknown_params_key_is_named() -> None:
    params = json.loads((GOLDEN / "checkpoint_mistral" / "params.json").read_text())
    params["multimodal"]["whisper_model_args"]["encoder_args"]["frobnicate"] = 1
    with pytest.raises(ValueError, match=r"encoder_args\.frobnicate"):
        parse_params(params)
    top = json.loads((GOLDEN / "checkpoint_mistral" / "params.json").read_text()) | {"qk_norm": True}
    with pytest.raises(ValueError, match=r"params\.qk_norm"):
        parse_params(top)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda p: p.update(use_biases=True), "use_biases"),
        (
            lambda p: p["multimodal"]["whisper_model_args"]["encoder_args"].update(pos_embed="rope"),
            "pos_embed",
        ),
        (lambda p: p.pop("n_heads"), "n_heads"),
    ],
)
def test_unsupported_params_values(edit, key: str) -> None:
    params = json.loads((GOLDEN / "checkpoint_mistral" / "params.json").read_text())
    edit(params)
    with pytest.raises(ValueError, match=key):
        parse_params(params)


def test_unknown_hf_config_key_and_rope_scaling() -> None:
    config = json.loads((GOLDEN / "checkpoint_hf" / "config.json").read_text())
    config["text_config"]["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0}
    with pytest.raises(ValueError, match="rope_scaling"):
        parse_hf_config(config)
    config = json.loads((GOLDEN / "checkpoint_hf" / "config.json").read_text())
    config["audio_config"]["is_causal"] = True
    with pytest.raises(ValueError, match=r"audio_config\.is_causal"):
        parse_hf_config(config)


def test_hf_layout_without_tokenizer(voxtral_asr_golden: Path) -> None:
    with pytest.raises(CheckpointError, match=r"tekken\.json does not exist"):
        speechserve.load(voxtral_asr_golden / "mini3b" / "checkpoint_hf", device="cpu")


def test_realtime_checkpoint_is_not_served_as_3b(tmp_path: Path) -> None:
    params = json.loads((GOLDEN / "checkpoint_mistral" / "params.json").read_text())
    params["multimodal"]["whisper_model_args"]["encoder_args"]["causal"] = True
    (tmp_path / "params.json").write_text(json.dumps(params))
    (tmp_path / "consolidated.safetensors").write_bytes(b"")
    assert detect_layout(tmp_path).architecture == "voxtral_realtime"
    with pytest.raises(UnsupportedFeature, match="voxtral_realtime"):
        speechserve.load(tmp_path, device="cpu")
