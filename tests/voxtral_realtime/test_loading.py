"""Loading Voxtral Realtime checkpoints: both layouts to identical tensors, strict configs, the tokenizer's
streaming section, and loud failures."""

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
from speechserve.models.voxtral_realtime.config import load_config, parse_hf_config, parse_params
from speechserve.models.voxtral_realtime.pipeline import VoxtralRealtimePipeline
from speechserve.registry import get
from speechserve.testing.realtime_checkpoint import RELEASE_PARAMS, write_voxtral_realtime_tekken


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name


def test_golden_layouts_load_identical_tensors(realtime_case: Path) -> None:
    tekken = realtime_case / "checkpoint_mistral" / "tekken.json"
    native = speechserve.load(realtime_case / "checkpoint_mistral", device="cpu")
    hf = speechserve.load(realtime_case / "checkpoint_hf", device="cpu", tokenizer=tekken)
    assert isinstance(native, VoxtralRealtimePipeline) and isinstance(hf, VoxtralRealtimePipeline)
    assert native.family is get("voxtral_realtime")
    assert native.family.capabilities == {"transcription", "chat", "realtime"}
    native_cfg = load_config(realtime_case / "checkpoint_mistral", "mistral")
    assert native_cfg == load_config(realtime_case / "checkpoint_hf", "hf")
    assert (native_cfg.sliding_window, native_cfg.encoder.sliding_window) == (48, 96)
    _assert_identical(native.model.state_dict(), hf.model.state_dict())
    assert len(native.model.state_dict()) == 57  # every native tensor, nothing else (tied: no output.weight)


def test_tiny_layouts_round_trip(tiny_realtime_checkpoint: Path, tiny_realtime_checkpoint_hf: Path) -> None:
    assert detect_layout(tiny_realtime_checkpoint_hf).architecture == "voxtral_realtime"
    native = speechserve.load(tiny_realtime_checkpoint, device="cpu")
    hf = speechserve.load(tiny_realtime_checkpoint_hf, device="cpu")
    _assert_identical(native.model.state_dict(), hf.model.state_dict())


def test_bf16_load_keeps_checkpoint_values(tiny_realtime_checkpoint: Path) -> None:
    fp32 = speechserve.load(tiny_realtime_checkpoint, device="cpu").model.state_dict()
    bf16 = speechserve.load(tiny_realtime_checkpoint, device="cpu", dtype="bfloat16")
    for name, t in bf16.model.state_dict().items():
        assert t.dtype == torch.bfloat16 and torch.equal(t.float(), fp32[name]), name
    ids = bf16.session()
    ids.push(torch.randn(20_000).numpy() * 0.1)
    ids.end()
    assert len(list(ids.steps())) > 10


def test_release_params_parse() -> None:
    cfg = parse_params(json.loads(json.dumps(RELEASE_PARAMS)))
    dec, enc = cfg.decoder, cfg.encoder
    assert (dec.dim, dec.n_layers, dec.n_kv_heads, cfg.sliding_window) == (3072, 26, 8, 8192)
    assert (enc.dim, enc.n_heads * enc.head_dim, enc.sliding_window) == (1280, 2048, 750)
    assert cfg.decoder.tied_embeddings and cfg.decoder.max_seq_len == 131072 and cfg.t_cond_dim == 32
    assert cfg.samples_per_token == 1280 and cfg.encoder.audio.global_log_mel_max == 1.5


def _params(case: Path) -> dict:
    return json.loads((case / "checkpoint_mistral" / "params.json").read_text())


def _enc(params: dict) -> dict:
    return params["multimodal"]["whisper_model_args"]["encoder_args"]


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda p: p.update(rope_scaling={"factor": 2}), "params.rope_scaling"),
        (lambda p: p.update(tied_embeddings=False), "tied_embeddings"),
        (lambda p: p.update(sliding_window=[48, 96]), "sliding_window"),
        (lambda p: p.update(ada_rms_norm_t_cond=False), "ada_rms_norm_t_cond"),
        (lambda p: _enc(p).update(pos_embed="sinusoidal"), "encoder_args.pos_embed"),
        (lambda p: _enc(p).update(norm_type="layer_norm"), "encoder_args.norm_type"),
        (
            lambda p: _enc(p)["audio_encoding_args"].update(transcription_format="instruct"),
            "transcription_format",
        ),
        (lambda p: _enc(p)["audio_encoding_args"].update(frame_rate=25.0), "frame_rate"),
    ],
)
def test_unsupported_params_name_the_key(realtime_case: Path, edit, key: str) -> None:  # type: ignore[no-untyped-def]
    params = _params(realtime_case)
    edit(params)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        parse_params(params)


def test_unsupported_hf_config_names_the_key(realtime_case: Path) -> None:
    config = json.loads((realtime_case / "checkpoint_hf" / "config.json").read_text())
    config["text_config"]["rope_parameters"]["rope_type"] = "yarn"
    with pytest.raises(ValueError, match=r"text_config\.rope_parameters"):
        parse_hf_config(config)
    config = json.loads((realtime_case / "checkpoint_hf" / "config.json").read_text())
    config["audio_config"]["is_causal"] = False
    with pytest.raises(ValueError, match=r"audio_config\.is_causal"):
        parse_hf_config(config)


def test_unsupported_checkpoint_is_refused_by_this_family(realtime_case: Path, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    shutil.copytree(realtime_case / "checkpoint_mistral", root)
    params = _params(realtime_case)
    _enc(params)["pos_embed"] = "sinusoidal"
    (root / "params.json").write_text(json.dumps(params))
    assert detect_layout(root).architecture == "voxtral_realtime"
    with pytest.raises(UnsupportedFeature, match=r"voxtral_realtime.*encoder_args\.pos_embed"):
        speechserve.load(root, device="cpu")


def test_missing_and_unexpected_tensors_are_listed(tiny_realtime_checkpoint: Path, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    shutil.copytree(tiny_realtime_checkpoint, root)
    weights = root / "consolidated.safetensors"
    tensors = load_file(str(weights))
    del tensors["layers.1.ada_rms_norm_t_cond.2.weight"]
    tensors["output.weight"] = tensors["mm_streams_embeddings.embedding_module.tok_embeddings.weight"].clone()
    save_file(tensors, str(weights))
    with pytest.raises(CheckpointError) as err:
        speechserve.load(root, device="cpu")
    assert "1 missing tensor(s): layers.1.ada_rms_norm_t_cond.2.weight" in str(err.value)
    assert "1 unexpected tensor(s): output.weight" in str(err.value)


def test_wrong_shape_is_named(tiny_realtime_checkpoint: Path, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    shutil.copytree(tiny_realtime_checkpoint, root)
    params = json.loads((root / "params.json").read_text())
    params["hidden_dim"] = 64
    (root / "params.json").write_text(json.dumps(params))
    with pytest.raises(CheckpointError, match=r"layers\.0\.feed_forward\.w1\.weight has shape \(48, 16\)"):
        speechserve.load(root, device="cpu")


def test_empty_weights_file(tiny_realtime_checkpoint: Path, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    shutil.copytree(tiny_realtime_checkpoint, root)
    (root / "consolidated.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="cannot read"):
        speechserve.load(root, device="cpu")


def test_tokenizer_delay_default_comes_from_tekken(tiny_realtime_checkpoint: Path, tmp_path: Path) -> None:
    pipe = speechserve.load(tiny_realtime_checkpoint, device="cpu")
    assert pipe.delay_ms == 480 and len(pipe.stream_prompt().ids) == 1 + 32 + 6
    tekken = write_voxtral_realtime_tekken(tmp_path / "tekken.json", delay_ms=960)
    slow = speechserve.load(tiny_realtime_checkpoint, device="cpu", tokenizer=tekken)
    prompt = slow.stream_prompt()
    assert slow.delay_ms == 960 and prompt.n_delay == 12 and len(prompt.ids) == 45
    assert prompt.ids == (1, *[32] * 44) and prompt.right_pad_samples == (12 + 11) * 1280


def test_instruct_tokenizer_is_refused(tiny_realtime_checkpoint: Path, tmp_path: Path) -> None:
    from speechserve.testing.tekken import write_voxtral_asr_tekken

    tekken = write_voxtral_asr_tekken(tmp_path / "tekken.json")
    with pytest.raises(CheckpointError, match="not a Voxtral Realtime tokenizer"):
        speechserve.load(tiny_realtime_checkpoint, device="cpu", tokenizer=tekken)


def test_hf_layout_without_tokenizer(realtime_case: Path) -> None:
    with pytest.raises(CheckpointError, match=r"tekken\.json does not exist"):
        speechserve.load(realtime_case / "checkpoint_hf", device="cpu")


def test_family_writes_random_checkpoints(tmp_path: Path) -> None:
    family = get("voxtral_realtime")
    a = speechserve.load(family.write_random(tmp_path / "a", preset="tiny", seed=3), device="cpu")
    b = speechserve.load(
        family.write_random(tmp_path / "b", preset="tiny", seed=3, layout="hf"), device="cpu"
    )
    c = speechserve.load(family.write_random(tmp_path / "c", preset="tiny", seed=4), device="cpu")
    _assert_identical(a.model.state_dict(), b.model.state_dict())
    assert not torch.equal(a.model.decoder.norm.weight, c.model.decoder.norm.weight)
    assert (tmp_path / "b" / "config.json").is_file() and not (tmp_path / "b" / "params.json").exists()
