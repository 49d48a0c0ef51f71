"""The production loader on tiny random checkpoints in the exact release layout, and its documented errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import speechserve
from speechserve.errors import CheckpointError, ModelNotFound
from speechserve.models.voxtral_tts.config import parse_params


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rewrite_weights(root: Path, edit) -> None:
    tensors = load_file(str(root / "consolidated.safetensors"))
    edit(tensors)
    save_file(tensors, str(root / "consolidated.safetensors"))


def test_release_layout_loads(tiny_checkpoint: Path, tiny_tts) -> None:
    files = sorted(p.name for p in tiny_checkpoint.iterdir())
    assert files == ["consolidated.safetensors", "params.json", "tekken.json", "voice_embedding"]
    tensors = load_file(str(tiny_checkpoint / "consolidated.safetensors"))
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    assert "output.weight" not in tensors and "acoustic_transformer.time_embedding.inv_freq" not in tensors
    assert "audio_tokenizer.decoder_blocks.0.conv.parametrizations.weight.original1" in tensors
    assert tiny_tts.voices == ["casual_male", "cheerful_female", "fr_female"]
    assert tiny_tts.sample_rate == 24000 and tiny_tts.samples_per_frame == 1920
    assert not tiny_tts.supports_voice_cloning


def test_weights_match_checkpoint(tiny_checkpoint: Path, tiny_tts) -> None:
    tensors = load_file(str(tiny_checkpoint / "consolidated.safetensors"))
    model = tiny_tts.model
    assert torch.equal(
        model.backbone.layers[1].attention.wq.weight, tensors["layers.1.attention.wq.weight"].float()
    )
    emb = tensors["mm_audio_embeddings.audio_codebook_embeddings.embeddings.weight"].float()
    assert torch.equal(model.audio_embeddings.embeddings.weight, emb)
    # weight norm folded: w = g · v / ‖v‖ over all dims but 0
    pre = "audio_tokenizer.decoder_blocks.2.conv.parametrizations.weight."
    g, v = tensors[pre + "original0"].float(), tensors[pre + "original1"].float()
    folded = torch._weight_norm(v, g, 0)
    torch.testing.assert_close(model.audio_tokenizer.decoder_blocks[2].conv.weight, folded)
    # semantic centroids = embedding_sum / clamp(cluster_usage, 1e-5)
    q = "audio_tokenizer.quantizer.semantic_codebook."
    want = (
        tensors[q + "embedding_sum"].float() / tensors[q + "cluster_usage"].float().clamp(min=1e-5)[:, None]
    )
    torch.testing.assert_close(model.audio_tokenizer.semantic_codebook.centroids, want)
    # derived buffers recomputed, not left on the meta device
    for name, buf in model.named_buffers():
        assert buf.device.type == "cpu", name


def test_missing_tensor(tiny_checkpoint: Path, tmp_path: Path) -> None:
    root = _copy(tiny_checkpoint, tmp_path / "ckpt")
    _rewrite_weights(root, lambda t: t.pop("layers.0.feed_forward.w2.weight"))
    with pytest.raises(CheckpointError, match=r"1 missing tensor\(s\): layers\.0\.feed_forward\.w2\.weight"):
        speechserve.load(root)


def test_unexpected_tensor(tiny_checkpoint: Path, tmp_path: Path) -> None:
    root = _copy(tiny_checkpoint, tmp_path / "ckpt")
    _rewrite_weights(root, lambda t: t.update({"output.weight": torch.zeros(4, 4, dtype=torch.bfloat16)}))
    with pytest.raises(CheckpointError, match=r"1 unexpected tensor\(s\): output\.weight"):
        speechserve.load(root)


def test_wrong_shape(tiny_checkpoint: Path, tmp_path: Path) -> None:
    root = _copy(tiny_checkpoint, tmp_path / "ckpt")
    _rewrite_weights(root, lambda t: t.update({"norm.weight": torch.ones(7, dtype=torch.bfloat16)}))
    with pytest.raises(CheckpointError, match=r"norm\.weight has shape \(7,\)"):
        speechserve.load(root)


def test_unsupported_params_key(tiny_checkpoint: Path, tmp_path: Path) -> None:
    root = _copy(tiny_checkpoint, tmp_path / "ckpt")
    params = json.loads((root / "params.json").read_text())
    params["multimodal"]["audio_model_args"]["acoustic_transformer_args"]["rope_scaling"] = {"type": "yarn"}
    (root / "params.json").write_text(json.dumps(params))
    with pytest.raises(ValueError, match=r"acoustic_transformer_args\.\['rope_scaling'\]|rope_scaling"):
        speechserve.load(root)


def test_unsupported_params_value() -> None:
    params = json.loads(json.dumps(_release_like()))
    params["multimodal"]["audio_tokenizer_args"]["causal"] = False
    with pytest.raises(ValueError, match=r"audio_tokenizer_args\.causal"):
        parse_params(params)


def _release_like() -> dict:
    from speechserve.testing.checkpoint import preset_params

    return preset_params("full")


def test_release_params_parse() -> None:
    cfg = parse_params(_release_like())
    assert cfg.flow.n_decoding_steps == 7 and cfg.flow.norm_eps == 1e-5
    assert cfg.codes.codebook_sizes[:2] == [8194, 23] and cfg.codes.embedding_rows == 9088
    assert (
        cfg.codes.semantic_head_rows == 8320
        and cfg.codes.offsets[1] == 8194
        and cfg.codes.offsets[-1] == 8194 + 23 * 35
    )
    assert cfg.codec.samples_per_frame == 1920 and cfg.codec.frame_rate == 12.5
    assert cfg.codec.encoder_windows() == [16, 8, 4, 2] and cfg.codec.decoder_windows() == [2, 4, 8, 16]


def test_missing_voice_file(tiny_checkpoint: Path, tmp_path: Path) -> None:
    root = _copy(tiny_checkpoint, tmp_path / "ckpt")
    (root / "voice_embedding" / "fr_female.pt").unlink()
    with pytest.raises(CheckpointError, match=r"fr_female: no voice_embedding/fr_female\.pt"):
        speechserve.load(root)


def test_safetensors_voice_accepted(tiny_checkpoint: Path, tmp_path: Path) -> None:
    root = _copy(tiny_checkpoint, tmp_path / "ckpt")
    pt = root / "voice_embedding" / "fr_female.pt"
    rows = torch.load(pt, weights_only=True)
    pt.unlink()
    save_file({"embedding": rows}, str(root / "voice_embedding" / "fr_female.safetensors"))
    tts = speechserve.load(root)
    assert torch.equal(tts._voices["fr_female"], rows.float())


def test_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        speechserve.load(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="does not exist"):
        speechserve.load(tmp_path / "nope")
