"""What benchmarks need to know about Voxtral TTS: bytes of weights read per engine step (the bandwidth
floor) and the bare reference loop the engine's overhead is measured against."""

from __future__ import annotations

import time

import torch

from speechserve.models.voxtral_tts.codec_stage import CodecStage
from speechserve.models.voxtral_tts.pipeline import VoxtralTTSPipeline
from speechserve.options import SynthesisOptions


def weight_bytes_per_step(pipe: VoxtralTTSPipeline, n_steps: int) -> int:
    """Bytes read per engine step: backbone once, flow transformer once per Euler step (both CFG branches
    share the read), plus the semantic head (the codec is excluded: it runs per chunk, not per step)."""
    from speechserve.models.quantize import weight_bytes as size  # ISQ's int8 weights and scales counted too

    model = pipe.model
    backbone = size(model.backbone) - size(model.backbone.tok_embeddings)
    flow = model.acoustic_transformer
    head = size(flow.semantic_codebook_output)
    return backbone + n_steps * (size(flow) - head) + head


@torch.inference_mode()
def bare_model_seconds(pipe: VoxtralTTSPipeline, frames: int, text: str) -> float:
    """The same work as one engine request with no engine: the reference frame loop plus incremental codec
    decodes on the engine's default chunk schedule (1, 1, 2, 4, 8, 16, 25, … frames)."""
    stage = CodecStage(pipe.model.audio_tokenizer, pipe.device)
    start = time.perf_counter()
    opts = SynthesisOptions(seed=0, max_frames=frames, ignore_end=True)
    state, codes, emitted = stage.new_state(), [], 0
    for step in pipe.frames(text, None, opts):
        codes.append(step.codes.cpu())
        due = len(codes) - emitted
        if due >= min(25, max(1, emitted)) or len(codes) == frames:
            ((_, state),) = stage.decode([(state, torch.stack(codes[emitted:]))])
            emitted = len(codes)
    return time.perf_counter() - start
