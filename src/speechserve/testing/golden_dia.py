"""Run one Dia golden case (format: tests/golden/dia/README.md) end to end, in fp32 on the CPU.

Text bytes → encoder (both CFG branches) → greedy CFG-filtered decoding with the delay pattern (every step's
conditional and unconditional logits traced) → de-delayed codes → DAC latent and waveform, each item decoded
alone. ``layout`` picks the Dia checkpoint ("nari": ``dia_nari/``, "hf": ``dia_hf/``); the DAC comes from
``dac_descript/`` with the nari layout and ``dac_hf/`` with the transformers one unless ``dac`` names it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from speechserve.models.dia.config import parse_config
from speechserve.models.dia.generation import generate
from speechserve.models.dia.loader import load_dac, load_dia_weights
from speechserve.models.dia.options import DiaOptions
from speechserve.models.dia.text import encode_text

LAYOUTS = {"nari": ("dia_nari", "dac_descript"), "hf": ("dia_hf", "dac_hf")}
CPU = torch.device("cpu")


def _padded(parts: list[torch.Tensor], length: int, fill: float | int = 0) -> torch.Tensor:
    """[n_i, ...] tensors → [B, length, ...], padded along dim 0 of each with ``fill``."""
    out = parts[0].new_full((len(parts), length, *parts[0].shape[1:]), fill)
    for i, part in enumerate(parts):
        out[i, : part.shape[0]] = part
    return out


@torch.inference_mode()
def run_dia_case(
    case_dir: Path, case: dict, layout: str = "hf", dac: str | None = None
) -> dict[str, torch.Tensor]:
    """All keys of the case's `expected.safetensors`, with the same names and dtypes."""
    if layout not in LAYOUTS:
        raise ValueError(f"Dia golden layout must be one of {sorted(LAYOUTS)}, not {layout!r}")
    dia_dir, default_dac = (case_dir / d for d in LAYOUTS[layout])
    cfg = parse_config(json.loads((dia_dir / "config.json").read_text(encoding="utf-8")))
    model = load_dia_weights(cfg, dia_dir, torch.float32, CPU)
    codec = load_dac(case_dir / dac if dac else default_dac, CPU)
    gen = case["generation"]
    options = DiaOptions(
        cfg_scale=gen["cfg_scale"], temperature=gen["temperature"], top_k=gen["cfg_filter_top_k"], max_tokens=gen["max_tokens"]
    )  # fmt: skip
    texts = [encode_text(t, cfg.encoder.max_positions) for t in case["inputs"]["texts"]]
    results = generate(model, texts, options, trace=True)

    longest, steps = max(len(t) for t in texts), gen["max_tokens"]
    encoded = [model.model.encoder(torch.tensor([t, [0] * len(t)])) for t in texts]
    logits = [torch.stack(r.logits) for r in results]  # [steps_b, 2, C, V]
    n_frames = [r.codes.shape[0] for r in results]
    frames = max(n_frames)
    latents = [codec.quantizer.from_codes(r.codes.t()[None])[0].t() for r in results]  # [T_b, latent]
    waves = [codec.decode(r.codes.t()[None])[0] for r in results]
    out = {
        "text_ids": _padded([torch.tensor(t) for t in texts], longest),
        "text_mask": _padded([torch.ones(len(t), dtype=torch.long) for t in texts], longest),
        "encoder_out_cond": _padded([e[0] for e in encoded], longest),
        "encoder_out_uncond": _padded([e[1] for e in encoded], longest),
        "logits_cond": _padded([lg[:, 0] for lg in logits], steps),
        "logits_uncond": _padded([lg[:, 1] for lg in logits], steps),
        "delayed_codes": torch.stack([r.rows.rows[: steps + 1] for r in results]),
        "codes": _padded([r.codes for r in results], frames, -1).transpose(1, 2).contiguous(),
        "num_frames": torch.tensor(n_frames, dtype=torch.long),
        "dac_latent": _padded(latents, frames).transpose(1, 2).contiguous(),
        "waveform": _padded(waves, frames * codec.cfg.hop_length),
    }
    cond0, uncond0 = out["logits_cond"][:, 0], out["logits_uncond"][:, 0]
    out |= {
        "logits_cond_step0": cond0,
        "logits_uncond_step0": uncond0,
        "cfg_logits_step0": cond0 + gen["cfg_scale"] * (cond0 - uncond0),
    }
    return out
