"""Write random-weight Dia checkpoints in the real on-disk layouts, at any size, with a ``dac/`` codec folder.

- ``layout="hf"``: transformers' ``config.json`` (≥ 5 schema: ``rope_parameters``, audio ids in
  ``decoder_config``) and ``model-0000i-of-0000n.safetensors`` shards with ``model.safetensors.index.json``;
- ``layout="nari"``: the hub ``config.json`` (nari-labs/Dia-1.6B-0626's schema) and ``model.safetensors``
  with nari-labs' names and DenseGeneral kernel shapes;
- ``dac/``: transformers' ``DacModel`` (``config.json`` + ``model.safetensors``, folded) or, with
  ``dac_layout="descript"``, a descript ``weights.pth`` (weight-norm g/v pairs, ``metadata.kwargs``).

Presets: "tiny" (loads in well under a second), "small" (benchmarks on a CPU), "wide" (the real widths and
DAC with 4 encoder and 4 decoder layers, ~2 GB in fp32), "full" (Dia-1.6B and the 44.1 kHz DAC's real sizes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import save_file

from speechserve.models.dia.config import DacConfig, parse_config
from speechserve.models.dia.dac import DAC
from speechserve.models.dia.model import Dia

DELAY_PATTERN = [0, 8, 9, 10, 11, 12, 13, 14, 15]

PRESETS = {
    # encoder (hidden, layers, heads, head_dim, intermediate) / decoder (hidden, layers, heads, kv, head_dim,
    # cross heads, cross head_dim, intermediate) / DAC (encoder_dim, decoder_dim)
    "tiny": {"encoder": (32, 2, 2, 16, 64), "decoder": (32, 2, 4, 2, 8, 2, 16, 64), "dac": (2, 32)},
    "small": {"encoder": (256, 4, 4, 64, 1024), "decoder": (512, 4, 8, 2, 64, 8, 64, 2048), "dac": (16, 384)},
    "full": {"encoder": (1024, 12, 16, 128, 4096), "decoder": (2048, 18, 16, 4, 128, 16, 128, 8192), "dac": (64, 1536)},
    "wide": {"encoder": (1024, 4, 16, 128, 4096), "decoder": (2048, 4, 16, 4, 128, 16, 128, 8192), "dac": (64, 1536)},
}  # fmt: skip


def hub_config(preset: str) -> dict:
    """The nari-labs/Dia-1.6B-0626 ``config.json`` schema with the preset's sizes."""
    eh, el, ehd, ed, ei = PRESETS[preset]["encoder"]
    dh, dl, dhd, dkv, dd, ch, cd, di = PRESETS[preset]["decoder"]
    stack = {"hidden_act": "silu", "initializer_range": 0.02, "norm_eps": 1e-5, "rope_scaling": None, "rope_theta": 10000.0}  # fmt: skip
    encoder = {
        **stack,
        "model_type": "dia_encoder",
        "vocab_size": 256,
        "hidden_size": eh,
        "num_hidden_layers": el,
    }
    encoder |= {
        "num_attention_heads": ehd,
        "num_key_value_heads": ehd,
        "head_dim": ed,
        "intermediate_size": ei,
    }
    encoder |= {"max_position_embeddings": 1024}
    decoder = {**stack, "model_type": "dia_decoder", "vocab_size": 1028, "num_channels": 9, "hidden_size": dh}
    decoder |= {
        "num_hidden_layers": dl,
        "num_attention_heads": dhd,
        "num_key_value_heads": dkv,
        "head_dim": dd,
    }
    decoder |= {"cross_hidden_size": eh, "cross_num_attention_heads": ch, "cross_num_key_value_heads": ch}
    decoder |= {"cross_head_dim": cd, "intermediate_size": di, "max_position_embeddings": 3072}
    return {
        "architectures": ["DiaForConditionalGeneration"], "model_type": "dia", "is_encoder_decoder": True,
        "bos_token_id": 1026, "eos_token_id": 1024, "pad_token_id": 1025, "delay_pattern": DELAY_PATTERN,
        "norm_eps": 1e-5, "initializer_range": 0.02, "torch_dtype": "float32", "transformers_version": "4.53.0.dev0",
        "encoder_config": encoder, "decoder_config": decoder,
    }  # fmt: skip


def transformers_config(preset: str) -> dict:
    """The same sizes as transformers ≥ 5 saves them (``rope_parameters``; ids inside the decoder config)."""
    config = hub_config(preset)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        config["decoder_config"][key] = config.pop(key)
        config[key] = None
    for stack in (config["encoder_config"], config["decoder_config"]):
        stack["rope_parameters"] = {"rope_theta": stack.pop("rope_theta"), "rope_type": "default"}
        del stack["rope_scaling"]
    config["decoder_config"]["use_cache"] = True
    config["dtype"] = config.pop("torch_dtype")
    return config | {"transformers_version": "5.23.0", "use_cache": True}


def random_dia_state(config: dict, seed: int) -> dict[str, torch.Tensor]:
    """Random weights in transformers' names: projections ~ N(0, 1/fan_in), norms 1 ± 0.1, embeddings N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {n: p.shape for n, p in Dia(parse_config(config)).state_dict().items()}
    state = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            state[name] = 1 + 0.1 * (2 * torch.rand(shape, generator=gen) - 1)
        elif "embed" in name:
            state[name] = torch.randn(shape, generator=gen)
        else:
            state[name] = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
    return state


def to_nari(state: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    """transformers names/shapes → nari-labs names and DenseGeneral kernels (the loader's inverse)."""
    dec = config["decoder_config"]
    out = {}
    for name, w in state.items():
        nari = name.removeprefix("model.").replace(".mlp.gate_up_proj.", ".mlp.wi_fused.").replace(".mlp.down_proj.", ".mlp.wo.")  # fmt: skip
        if name == "model.decoder.embeddings.embed.weight":
            for c, part in enumerate(w.split(dec["vocab_size"])):
                out[f"decoder.embeddings.{c}.weight"] = part.clone()
            continue
        if name == "logits_dense.weight":
            out["decoder.logits_dense.weight"] = w.t().reshape(w.shape[1], dec["num_channels"], dec["vocab_size"]).contiguous()  # fmt: skip
            continue
        if "_proj." in name or ".mlp." in name:
            kernel = w.t().contiguous()  # [in, out]
            if ".mlp.wi_fused." in nari:
                kernel = kernel.reshape(kernel.shape[0], 2, -1)
            elif name.endswith("o_proj.weight"):
                n_heads = w.shape[1] // _head_dim(nari, config)
                kernel = kernel.reshape(n_heads, -1, kernel.shape[1])
            elif "mlp" not in nari:
                kernel = kernel.reshape(kernel.shape[0], -1, _head_dim(nari, config))
            w = kernel
        out[nari] = w.contiguous()
    return out


def _head_dim(nari_name: str, config: dict) -> int:
    if nari_name.startswith("encoder."):
        return config["encoder_config"]["head_dim"]
    cross = ".cross_attention." in nari_name
    return config["decoder_config"]["cross_head_dim" if cross else "head_dim"]


def _save_sharded(state: dict[str, torch.Tensor], directory: Path, n_shards: int) -> None:
    names = sorted(state)
    per = math.ceil(len(names) / n_shards)
    weight_map = {}
    for i in range(n_shards):
        file = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        part = names[i * per : (i + 1) * per]
        save_file({n: state[n].contiguous() for n in part}, str(directory / file), metadata={"format": "pt"})
        weight_map |= dict.fromkeys(part, file)
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def write_random_dia_checkpoint(
    directory: str | Path,
    preset: str = "tiny",
    seed: int = 0,
    layout: str = "hf",
    dac_layout: str = "hf",
    with_dac: bool = True,
    shards: int = 2,
) -> Path:
    """A random Dia checkpoint in ``directory`` (created), with its codec in ``dac/``; returns the directory."""
    if layout not in ("hf", "nari") or dac_layout not in ("hf", "descript"):
        raise ValueError(f"unknown layout {layout!r} / DAC layout {dac_layout!r}")
    config = hub_config(preset)  # KeyError: no such preset
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    state = random_dia_state(config, seed)
    if layout == "nari":
        (root / "config.json").write_text(json.dumps(config, indent=2))
        save_file(to_nari(state, config), str(root / "model.safetensors"), metadata={"format": "pt"})
    else:
        (root / "config.json").write_text(json.dumps(transformers_config(preset), indent=2))
        _save_sharded(state, root, shards)
    if with_dac:
        write_random_dac(root / "dac", preset, seed + 1, dac_layout)
    return root


# ---- the DAC ------------------------------------------------------------------------------------------------
def dac_config(preset: str) -> DacConfig:
    encoder_dim, decoder_dim = PRESETS[preset]["dac"]
    return DacConfig(
        encoder_dim, (2, 4, 8, 8), encoder_dim * 16, decoder_dim, (8, 8, 4, 2), 9, 1024, 8, 44100
    )


def random_dac_state(cfg: DacConfig, seed: int) -> dict[str, torch.Tensor]:
    """Random folded DAC weights (transformers names): convs ~ N(0, 0.64/fan_in), Snake α ∈ [0.5, 1.5]."""
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {n: p.shape for n, p in DAC(cfg).state_dict().items()}
    state = {}
    for name, shape in shapes.items():
        if name.endswith("alpha"):
            state[name] = 0.5 + torch.rand(shape, generator=gen)
        elif name.endswith("bias"):
            state[name] = 0.01 * torch.randn(shape, generator=gen)
        elif "codebook" in name:
            state[name] = torch.randn(shape, generator=gen)
        else:
            fan_in = shape[0] * shape[2] // 2 if ".conv_t1." in name else math.prod(shape[1:])
            state[name] = 0.8 * torch.randn(shape, generator=gen) / math.sqrt(fan_in)  # keeps |x| moderate
    return state


def _hf_to_descript(name: str, n_blocks: int) -> str:
    unit = {"snake1": 0, "conv1": 1, "snake2": 2, "conv2": 3}
    parts = name.split(".")
    top = {"decoder": "model", "encoder": "block"}.get(parts[0])
    if top is None:
        return name
    if parts[1] in ("conv1", "snake1", "conv2"):
        index = {"conv1": 0, "snake1": n_blocks + 1, "conv2": n_blocks + 2}[parts[1]]
        return ".".join([parts[0], top, str(index), *parts[2:]])
    i, sub = int(parts[2]) + 1, parts[3]
    if sub.startswith("res_unit"):
        j = int(sub[-1]) + (1 if parts[0] == "decoder" else -1)
        return ".".join([parts[0], top, str(i), "block", str(j), "block", str(unit[parts[4]]), *parts[5:]])
    j = {"decoder": {"snake1": 0, "conv_t1": 1}, "encoder": {"snake1": 3, "conv1": 4}}[parts[0]][sub]
    return ".".join([parts[0], top, str(i), "block", str(j), *parts[4:]])


def write_random_dac(directory: Path, preset: str = "tiny", seed: int = 1, layout: str = "hf") -> Path:
    """A random 44.1 kHz DAC in transformers' layout or as a descript ``weights.pth``."""
    cfg = dac_config(preset)
    state = random_dac_state(cfg, seed)
    directory.mkdir(parents=True, exist_ok=True)
    if layout == "hf":
        config = {
            "architectures": ["DacModel"], "model_type": "dac", "codebook_dim": cfg.codebook_dim,
            "codebook_size": cfg.codebook_size, "n_codebooks": cfg.n_codebooks, "encoder_hidden_size": cfg.encoder_dim,
            "decoder_hidden_size": cfg.decoder_dim, "hidden_size": cfg.latent_dim, "hop_length": cfg.hop_length,
            "downsampling_ratios": list(cfg.encoder_rates), "upsampling_ratios": list(cfg.decoder_rates),
            "sampling_rate": cfg.sample_rate, "quantizer_dropout": 0.5, "codebook_loss_weight": 1.0,
            "commitment_loss_weight": 0.25, "dtype": "float32", "transformers_version": "5.23.0",
        }  # fmt: skip
        (directory / "config.json").write_text(json.dumps(config, indent=2))
        save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
        return directory
    descript = {}
    for name, w in state.items():
        target = _hf_to_descript(name, len(cfg.decoder_rates))
        if name.endswith(".weight") and "codebook" not in name:
            base = target[: -len(".weight")]
            g = w.flatten(1).norm(dim=1).view(-1, *([1] * (w.dim() - 1)))
            descript[base + ".weight_g"], descript[base + ".weight_v"] = g, w.clone()
        else:
            descript[target] = w
    kwargs = {
        "encoder_dim": cfg.encoder_dim, "encoder_rates": list(cfg.encoder_rates), "latent_dim": cfg.latent_dim,
        "decoder_dim": cfg.decoder_dim, "decoder_rates": list(cfg.decoder_rates), "n_codebooks": cfg.n_codebooks,
        "codebook_size": cfg.codebook_size, "codebook_dim": cfg.codebook_dim, "quantizer_dropout": 0.5,
        "sample_rate": cfg.sample_rate,
    }  # fmt: skip
    torch.save({"state_dict": descript, "metadata": {"kwargs": kwargs}}, directory / "weights.pth")
    return directory
