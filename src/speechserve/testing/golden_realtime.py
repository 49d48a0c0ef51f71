"""Run one Voxtral Realtime golden case (format: tests/golden/voxtral_realtime/README.md) end to end.

Everything runs in fp32 on the CPU from the case's wav files through our own front end, twice per utterance:

- **offline**, as transformers' ``generate`` on a whole file: mistral_common's offline padding and prompt,
  one log-mel of the padded audio, one pass of the conv stem / encoder / adapter, the prompt prefilled, then
  one id per audio position up to the last-but-one (``offline_full_*``; ``greedy_*`` are its first steps);
- **streaming**, as transformers' streaming generator: the wav plus the online closing silence pushed into a
  :class:`StreamSession` (incremental mel, conv tails, ring KV caches), one id per 80 ms step.

The tokenizer is `checkpoint_mistral/tekken.json` for both layouts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from speechserve.audio.mel import log_mel_spectrogram
from speechserve.models.voxtral_realtime.frontend import MelFramer
from speechserve.models.voxtral_realtime.pipeline import VoxtralRealtimePipeline

LAYOUT_DIRS = {"mistral": "checkpoint_mistral", "hf": "checkpoint_hf"}
TOP_K = 5


def _top(logits: torch.Tensor, prefix: str) -> dict[str, torch.Tensor]:
    top = logits.topk(TOP_K, dim=-1)
    return {f"{prefix}_topk_ids": top.indices.to(torch.int64), f"{prefix}_topk_logits": top.values.float()}


def _offline_keys(pipe: VoxtralRealtimePipeline, samples: np.ndarray, delay_ms: int, utt: str, n_greedy: int) -> dict[str, torch.Tensor]:  # fmt: skip
    model, a = pipe.model, pipe.model.cfg.encoder.audio
    ids, padded = pipe.tokenizer.encode_offline(samples, delay_ms)
    n_delay = pipe.stream_prompt(delay_ms).n_delay
    mel = log_mel_spectrogram(torch.from_numpy(padded), a.num_mel_bins, a.window_size, a.hop_length, a.sampling_rate, a.global_log_mel_max)  # fmt: skip
    cache = model.new_cache(1)
    conv = model.conv_frames(mel[None], cache, [0])
    encoder = model.encoder_frames(conv, cache, [0], [0])
    audio = model.adapt(encoder)  # [1, n_positions, dim]
    ada = model.decoder.ada_scales(n_delay)[None]
    n_prompt, n_positions = len(ids), audio.shape[1]
    prompt = model.embed(audio[:, :n_prompt], torch.tensor([ids]))
    hidden = model.decode(prompt, cache, [0], [0], ada)[:, -1]
    logits, generated = [], []
    for position in range(n_prompt, n_positions):  # the last audio position is never fed (as transformers)
        logits.append(model.logits(hidden[0]).float())
        generated.append(int(logits[-1].argmax()))
        if position == n_positions - 1:
            break
        fused = model.embed(audio[:, position : position + 1], torch.tensor([[generated[-1]]]))
        hidden = model.decode(fused, cache, [0], [position], ada)[:, -1]
    stacked = torch.stack(logits)
    return {
        f"{utt}.mel": mel.float(),
        f"{utt}.conv_out": conv[0].float(),
        f"{utt}.encoder_out": encoder[0].float(),
        f"{utt}.adapter_out": audio[0].float(),
        f"{utt}.t_cond": model.t_cond(n_delay).float(),
        f"{utt}.input_ids": torch.tensor(ids, dtype=torch.int64),
        f"{utt}.logits_last": stacked[0],
        f"{utt}.greedy_ids": torch.tensor(generated[:n_greedy], dtype=torch.int64),
        **_top(stacked[:n_greedy], f"{utt}.greedy"),
        f"{utt}.offline_full_ids": torch.tensor(generated, dtype=torch.int64),
        **_top(stacked, f"{utt}.offline_full"),
    }


def _stream_keys(pipe: VoxtralRealtimePipeline, samples: np.ndarray, delay_ms: int, utt: str) -> dict[str, torch.Tensor]:  # fmt: skip
    session = pipe.session(delay_ms)
    prompt = session.state.prompt
    # the online closing silence: no pad to a whole token
    audio = np.concatenate([samples, np.zeros(prompt.right_pad_samples, np.float32)])
    session.push(audio)
    session.end(pad=False)
    steps = list(session.steps())
    logits = torch.stack([s.logits for s in steps])
    cfg = pipe.model.cfg
    framer = MelFramer(cfg.encoder.audio, prompt.left_pad_samples, cfg.mel_frames_per_token)
    framer.push(audio)
    first = framer.take(len(prompt.ids), torch.device("cpu"))
    rest = [framer.take(1, torch.device("cpu")) for _ in steps[1:]]
    return {
        f"{utt}.stream_first_chunk_mel": first,
        f"{utt}.stream_step_mel": torch.stack(rest),
        f"{utt}.stream_ids": torch.tensor([s.id for s in steps], dtype=torch.int64),
        **_top(logits, f"{utt}.stream"),
    }


@torch.inference_mode()
def run_voxtral_realtime_case(case_dir: Path, case: dict, layout: str = "mistral") -> dict[str, torch.Tensor]:
    """All keys of the case's `expected.safetensors`, computed with the checkpoint in ``layout``."""
    from speechserve.loading import load

    tekken = case_dir / LAYOUT_DIRS["mistral"] / "tekken.json"
    pipe = load(case_dir / LAYOUT_DIRS[layout], device="cpu", dtype=torch.float32, tokenizer=tekken)
    delay_ms = int(case.get("transcription_delay_ms", pipe.delay_ms))
    out: dict[str, torch.Tensor] = {}
    for utt, meta in case["utterances"].items():
        samples = pipe.load_audio(case_dir / meta["file"])
        out[f"{utt}.waveform"] = torch.from_numpy(samples).float()
        n_greedy = case["tensors"][f"{utt}.greedy_ids"]["shape"][0]
        out |= _offline_keys(pipe, samples, delay_ms, utt, n_greedy)
        out |= _stream_keys(pipe, samples, delay_ms, utt)
    return out
