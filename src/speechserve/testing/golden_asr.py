"""Run one Voxtral ASR golden case (format: tests/golden/voxtral_asr/README.md) end to end.

Everything runs in fp32 on the CPU from the case's wav files through our own front end: waveform → mel →
encoder → adapter → prompt (mistral_common) → decoder logits → 12 greedy steps, for the transcription and
the chat prompt of every utterance. The tokenizer is `checkpoint_mistral/tekken.json` for both layouts.
"""

from __future__ import annotations

from pathlib import Path

import torch

from speechserve.models.voxtral_asr.generation import Sampler, generate_tokens
from speechserve.models.voxtral_asr.pipeline import VoxtralASRPipeline
from speechserve.models.voxtral_asr.tokenizer import AudioPrompt

LAYOUT_DIRS = {"mistral": "checkpoint_mistral", "hf": "checkpoint_hf"}
TOP_K = 5


def _decode_keys(
    pipe: VoxtralASRPipeline, prompt: AudioPrompt, n_steps: int, prefix: str
) -> dict[str, torch.Tensor]:
    embeds = pipe.prompt_embeddings(prompt)
    steps = list(generate_tokens(pipe.model, embeds, n_steps, Sampler(0.0)))  # no stop id: fixed length
    logits = torch.stack([s.logits for s in steps])  # [n_steps, vocab]
    top = logits.topk(TOP_K, dim=-1)
    return {
        f"{prefix}.input_ids": torch.tensor(prompt.ids, dtype=torch.int64),
        f"{prefix}.logits_last": logits[0].float(),
        f"{prefix}.greedy_ids": torch.tensor([s.id for s in steps], dtype=torch.int64),
        f"{prefix}.greedy_topk_ids": top.indices.to(torch.int64),
        f"{prefix}.greedy_topk_logits": top.values.float(),
    }


@torch.inference_mode()
def run_voxtral_asr_case(case_dir: Path, case: dict, layout: str = "mistral") -> dict[str, torch.Tensor]:
    """All keys of the case's `expected.safetensors`, computed with the checkpoint in ``layout``."""
    from speechserve.loading import load

    tekken = case_dir / LAYOUT_DIRS["mistral"] / "tekken.json"
    pipe = load(case_dir / LAYOUT_DIRS[layout], device="cpu", dtype=torch.float32, tokenizer=tekken)
    model = pipe.model
    out: dict[str, torch.Tensor] = {}
    for utt, meta in case["utterances"].items():
        samples = pipe.load_audio(case_dir / meta["file"])
        out[f"{utt}.waveform"] = torch.from_numpy(samples).float()
        prompts = meta["prompts"]
        transcribe = pipe.tokenizer.encode_transcription(samples, prompts["transcribe"].get("language"))
        mel = pipe.features(transcribe.audios[0])
        encoder_out = model.whisper_encoder(mel)
        out[f"{utt}.mel"] = mel.float()
        out[f"{utt}.encoder_out"] = encoder_out.float()
        out[f"{utt}.adapter_out"] = model.audio_language_projection(encoder_out.flatten(0, 1)).float()
        n_steps = case["tensors"][f"{utt}.transcribe.greedy_ids"]["shape"][0]
        out |= _decode_keys(pipe, transcribe, n_steps, f"{utt}.transcribe")
        chat = [{"role": "user", "content": [{"type": "audio", "audio": (samples, pipe.sample_rate)}]}]
        chat[0]["content"].append({"type": "text", "text": prompts["chat"]["text"]})
        out |= _decode_keys(pipe, pipe.chat_prompt(chat)[0], n_steps, f"{utt}.chat")
    return out
