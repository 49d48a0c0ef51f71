"""Run one golden case folder (format: tests/golden/<model>/README.md) and return the reference's keys.

Everything runs in fp32 on the CPU with the case's own checkpoint, tokenizer, text, voice and noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from speechserve.checkpoints.layout import detect_layout
from speechserve.errors import UnsupportedFeature
from speechserve.loading import load
from speechserve.models.voxtral_tts.codec_stage import CodecStage
from speechserve.options import SynthesisOptions
from speechserve.testing.golden_asr import run_voxtral_asr_case


def run_case(case_dir: str | Path, layout: str = "mistral") -> dict[str, torch.Tensor]:
    """Run a case; the result has the same keys (and dtypes) as the case's `expected.safetensors`.

    The case format is recognised from its files: Dia cases (`dia_nari/`, `dia_hf/`; ``layout`` "nari" or
    "hf"), Voxtral Realtime and Voxtral ASR cases (`utterances` in case.json, checkpoints
    in `checkpoint_mistral/` and `checkpoint_hf/`, run from the one named by ``layout``) or Voxtral TTS cases.
    """
    case_dir = Path(case_dir)
    case = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
    if "utterances" in case and (case_dir / "checkpoint_mistral").is_dir():
        arch = detect_layout(case_dir / "checkpoint_mistral").architecture
        if arch == "voxtral_realtime":
            from speechserve.testing.golden_realtime import run_voxtral_realtime_case

            return run_voxtral_realtime_case(case_dir, case, layout)
        if arch != "voxtral_asr":
            raise UnsupportedFeature(f"{case_dir.name}: golden cases of {arch} are not supported yet")
        return run_voxtral_asr_case(case_dir, case, layout)
    if (case_dir / "dia_nari").is_dir() or (case_dir / "dia_hf").is_dir():
        from speechserve.testing.golden_dia import run_dia_case

        return run_dia_case(case_dir, case, layout)
    return _run_voxtral_tts(case_dir, case)


@torch.inference_mode()
def _run_voxtral_tts(case_dir: Path, case: dict) -> dict[str, torch.Tensor]:
    pipe = load(
        case_dir / case["model_dir"], device="cpu", dtype=torch.float32, tokenizer=case_dir / case["tekken"]
    )
    model = pipe.model
    noise = load_file(str(case_dir / "expected.safetensors"))[
        "noise"
    ]  # pinned per-frame flow noise: an input
    options = SynthesisOptions(
        max_frames=case["max_frames"],
        noise=noise,
        noise_scale=case.get("noise_scale", 1.0),
        cfg_alpha=case["cfg_alpha"],
        n_decoding_steps=case["n_steps"],
    )
    ids, embeds = pipe.prompt(case["text"], case["voice"])
    frames = list(pipe.frames(case["text"], case["voice"], options))
    codes = torch.stack([f.codes for f in frames])
    hidden = torch.stack([f.hidden for f in frames])
    n_audio = next((f.index for f in frames if f.is_end), len(frames))
    feedback = model.audio_embeddings(codes[: len(frames) - 1])

    pieces = _stream_like_vllm_omni(
        model.audio_tokenizer, list(codes[:n_audio]), case.get("stream_protocol", {})
    )
    return {
        "prompt_ids": torch.tensor(ids, dtype=torch.int64),
        "prefill_embeds": embeds.float(),
        "prefill_hidden": hidden[0].float(),
        "hidden": hidden.float(),
        "semantic_logits": model.acoustic_transformer.semantic_logits(hidden[:1])[0],
        "noise": noise.float()[: len(frames)],
        "flow_x": torch.stack([f.flow_x for f in frames]).float(),
        "codes": codes.to(torch.int64),
        "feedback_embedding_0": feedback[0].float(),
        "feedback_embeddings": feedback.float(),
        "codec_latent": model.audio_tokenizer.latent_from_codes(codes[None, :n_audio])[0].float(),
        "waveform": model.audio_tokenizer.decode(codes[None, :n_audio])[0].float(),
        "waveform_stream": torch.cat(pieces).float(),
    }


def _stream_like_vllm_omni(codec, frames: list[torch.Tensor], proto: dict) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    """Chunk boundaries of vllm-omni's async-chunk protocol (spec §7.3): a chunk every 5 frames while ≤ 25
    are buffered, then every 25, plus the remainder; decoded incrementally (our stateful codec stage)."""
    at_begin, chunk = proto.get("codec_chunk_frames_at_begin", 5), proto.get("codec_chunk_frames", 25)
    stage = CodecStage(codec, torch.device("cpu"))
    state, pieces, emitted = stage.new_state(), [], 0
    for n in range(1, len(frames) + 1):
        size = at_begin if n <= chunk else chunk
        if n % size == 0 or n == len(frames):
            ((pcm, state),) = stage.decode([(state, torch.stack(frames[emitted:n]))])
            pieces.append(pcm)
            emitted = n
    return pieces
