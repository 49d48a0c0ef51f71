"""Write random-weight Voxtral TTS checkpoints in the exact release layout, at any size.

`params.json` (real schema), `consolidated.safetensors` (bf16, real tensor names, weight-norm pairs,
semantic EMA state), `tekken.json` (rebuilt from mistral_common's bundled tokenizer) and
`voice_embedding/<name>.pt` for all 20 preset voices of the release. The "full" preset has the real widths
(~8 GB); "wide" the real widths, flow head and codec with 4 backbone layers (~2.9 GB); "tiny" loads in well
under a second.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from speechserve.models.voxtral_tts import VoxtralTTS
from speechserve.models.voxtral_tts.config import parse_params
from speechserve.models.voxtral_tts.loader import checkpoint_names
from speechserve.testing.tekken import write_voxtral_tekken

# The release's params.json (spec §1) and its 20 preset voices: name → (speaker id, voice_num_audio_tokens).
RELEASE_VOICES = {
    "casual_female": (0, 214), "casual_male": (1, 147), "cheerful_female": (2, 132), "neutral_female": (3, 218),
    "neutral_male": (4, 169), "pt_male": (5, 144), "pt_female": (6, 175), "nl_male": (7, 138), "nl_female": (8, 146),
    "it_male": (9, 168), "it_female": (10, 172), "fr_male": (11, 97), "fr_female": (12, 97), "es_male": (13, 208),
    "es_female": (14, 138), "de_male": (15, 163), "de_female": (16, 147), "ar_male": (17, 67), "hi_male": (18, 94),
    "hi_female": (19, 86),
}  # fmt: skip

RELEASE_PARAMS = {
    "dim": 3072, "n_layers": 26, "head_dim": 128, "hidden_dim": 9216, "n_heads": 32, "n_kv_heads": 8,
    "rope_theta": 1000000.0, "norm_eps": 1e-05, "vocab_size": 131072, "max_seq_len": 65536,
    "model_type": "voxtral_tts", "max_position_embeddings": 128000,
    "multimodal": {
        "bos_token_id": 1,
        "audio_model_args": {
            "semantic_codebook_size": 8192, "acoustic_codebook_size": 21, "n_acoustic_codebook": 36,
            "audio_encoding_args": {
                "codebook_pattern": "parallel", "interleave_audio_tokens_per_segment": 8192,
                "interleave_text_tokens_per_segment": 8192, "single_trailing_segment": False, "num_codebooks": 37,
                "sampling_rate": 24000, "frame_rate": 12.5,
            },
            "audio_token_id": 24, "begin_audio_token_id": 25, "input_embedding_concat_type": "sum",
            "acoustic_transformer_args": {
                "input_dim": 3072, "dim": 3072, "n_layers": 3, "head_dim": 128, "hidden_dim": 9216, "n_heads": 32,
                "n_kv_heads": 8, "use_biases": False, "rope_theta": 10000.0, "sigma": 1e-05, "sigma_max": 1.0,
            },
            "p_uncond": 0.0, "text_feature_bugged": False, "condition_dropped_token_id": 42,
        },
        "audio_tokenizer_args": {
            "channels": 1, "sampling_rate": 24000, "pretransform_patch_size": 240, "patch_proj_kernel_size": 7,
            "semantic_codebook_size": 8192, "semantic_dim": 256, "acoustic_codebook_size": 21, "acoustic_dim": 36,
            "conv_weight_norm": True, "causal": True, "attn_sliding_window_size": 16,
            "half_attn_window_upon_downsampling": True, "dim": 1024, "hidden_dim": 4096, "head_dim": 128,
            "n_heads": 8, "n_kv_heads": 8, "qk_norm_eps": 1e-06, "qk_norm": True, "use_biases": False,
            "norm_eps": 0.01, "layer_scale": True, "layer_scale_init": 0.01,
            "decoder_transformer_lengths_str": "2,2,2,2", "decoder_convs_kernels_str": "3,4,4,4",
            "decoder_convs_strides_str": "1,2,2,2", "voice": {},
        },
    },
}  # fmt: skip

# (backbone dim, layers, heads, kv heads, head_dim, hidden) / flow (same) / codec (dim, hidden, heads, head_dim)
PRESETS = {
    "full": None,
    "wide": {  # the release's widths, flow head and codec with 4 backbone layers (~2.9 GB): real per-layer costs
        "backbone": (3072, 4, 32, 8, 128, 9216),
        "flow": (3072, 3, 32, 8, 128, 9216),
        "codec": (1024, 4096, 8, 128),
    },
    "small": {
        "backbone": (512, 4, 8, 2, 64, 1536),
        "flow": (512, 3, 8, 2, 64, 1536),
        "codec": (256, 512, 8, 32),
    },
    "tiny": {"backbone": (32, 2, 4, 2, 16, 96), "flow": (32, 3, 4, 2, 16, 96), "codec": (64, 128, 8, 8)},
}
DEFAULT_VOICES = tuple(RELEASE_VOICES)
"""Every preset of the release, so a random checkpoint answers the same voice names (and OpenAI aliases)."""
_FIRST_DRAWN = ("casual_male", "cheerful_female", "fr_female")
"""Voices whose rows are drawn first, so they stay what the three-voice checkpoints of earlier versions held."""


def preset_params(preset: str, voices: tuple[str, ...] = DEFAULT_VOICES) -> dict:
    """`params.json` contents for a preset, listing ``voices`` with their real speaker ids."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    unknown = sorted(set(voices) - set(RELEASE_VOICES))
    if unknown:
        raise ValueError(f"not voices of the release: {', '.join(unknown)}")
    params = copy.deepcopy(RELEASE_PARAMS)
    mm = params["multimodal"]
    mm["audio_tokenizer_args"]["voice"] = {v: RELEASE_VOICES[v][0] for v in voices}
    dims = PRESETS[preset]
    if dims is None:
        return params
    keys = ("dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "hidden_dim")
    params.update(dict(zip(keys, dims["backbone"], strict=True)))
    flow = mm["audio_model_args"]["acoustic_transformer_args"]
    flow.update(dict(zip(keys, dims["flow"], strict=True)), input_dim=dims["backbone"][0])
    codec = mm["audio_tokenizer_args"]
    codec.update(dict(zip(("dim", "hidden_dim", "n_heads", "head_dim"), dims["codec"], strict=True)))
    codec["n_kv_heads"] = codec["n_heads"]
    return params


def _randomize(model: VoxtralTTS, gen: torch.Generator) -> None:
    """O(1) activations: linear weights ~ N(0, 1/fan_in); norms ~ U(0.7, 1.3); layer scales ~ U(0.1, 0.5)."""
    for name, p in model.named_parameters():
        if p.dim() == 1:
            lo, hi = (0.1, 0.5) if name.endswith("_scale") else (0.7, 1.3)
            p.data = torch.empty(p.shape).uniform_(lo, hi, generator=gen)
        elif "embeddings" in name:
            p.data = torch.randn(p.shape, generator=gen)
        else:
            fan_in = p[0].numel()
            p.data = torch.randn(p.shape, generator=gen) / fan_in**0.5


def write_random_checkpoint(
    root: str | Path,
    preset: str = "tiny",
    voices: tuple[str, ...] = DEFAULT_VOICES,
    with_encoder: bool = False,
    seed: int = 0,
) -> Path:
    """Write a random checkpoint in the release layout to ``root`` and return ``root``."""
    params = preset_params(preset, voices)
    root = Path(root)
    (root / "voice_embedding").mkdir(parents=True, exist_ok=True)
    cfg = parse_params(params)
    gen = torch.Generator().manual_seed(seed)
    model = VoxtralTTS(cfg, with_encoder=with_encoder)
    _randomize(model, gen)
    tensors: dict[str, torch.Tensor] = {}
    for name, w in model.state_dict().items():
        ckpt = checkpoint_names(name)
        if len(ckpt) == 2:  # weight-norm parametrization (g, v) of a codec conv: g = ‖v‖ ≠ 1
            v = w.float()
            tensors[ckpt[0]] = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
            tensors[ckpt[1]] = v.contiguous()
        else:
            tensors[ckpt[0]] = w.contiguous()
    size, dim = cfg.codec.semantic_codebook_size, cfg.codec.semantic_dim
    usage = torch.rand(size, generator=gen) * 4 + 0.5
    prefix = "audio_tokenizer.quantizer.semantic_codebook."
    tensors[prefix + "cluster_usage"] = usage
    tensors[prefix + "embedding_sum"] = torch.randn(size, dim, generator=gen) * usage[:, None]
    save_file({k: t.to(torch.bfloat16) for k, t in tensors.items()}, str(root / "consolidated.safetensors"))
    (root / "params.json").write_text(json.dumps(params, indent=2), encoding="utf-8")
    counts = {v: RELEASE_VOICES[v][1] for v in voices}
    write_voxtral_tekken(root / "tekken.json", counts)
    first = {v: i for i, v in enumerate(_FIRST_DRAWN)}
    for v in sorted(voices, key=lambda v: first.get(v, len(first))):
        rows = torch.randn(counts[v], cfg.backbone.dim, generator=gen).to(torch.bfloat16)
        torch.save(rows, root / "voice_embedding" / f"{v}.pt")
    return root
