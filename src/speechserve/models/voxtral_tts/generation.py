"""The per-frame generation loop of one Voxtral TTS request (canonical vllm-omni order, spec §5.6).

Frame 0 comes from the prefill hidden at the final `[BEGIN_AUDIO]`; every non-END frame's summed codebook
embedding is fed at the next position and the next frame comes from that output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from speechserve.models.voxtral_tts import VoxtralTTS
from speechserve.models.voxtral_tts.config import END_AUDIO_CODE


@dataclass(frozen=True)
class FrameStep:
    """One generated frame and what produced it (the extra tensors feed parity tests)."""

    index: int
    codes: torch.Tensor  # [37] int64, +2 space
    hidden: torch.Tensor  # [dim] normed backbone hidden that produced it
    flow_x: torch.Tensor  # [36] flow state before clamp/round

    @property
    def is_end(self) -> bool:
        return int(self.codes[0]) == END_AUDIO_CODE


NoiseSource = Callable[[int], torch.Tensor]  # frame index → initial flow noise [36]


def seeded_noise(seed: int | None, n_acoustic: int, scale: float = 1.0) -> NoiseSource:
    """Noise from a private CPU generator, so a request's audio never depends on other requests or devices."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, ()).item()))
    return lambda _i: torch.randn(n_acoustic, generator=gen) * scale


def request_noise(options, n_acoustic: int) -> NoiseSource:  # type: ignore[no-untyped-def]
    """A request's flow noise: its pinned ``options.noise`` rows while they last, then its seeded generator."""
    seeded = seeded_noise(options.seed, n_acoustic, options.noise_scale)
    pinned = options.noise
    if pinned is None:
        return seeded
    return lambda i: pinned[i] if i < pinned.shape[0] else seeded(i)


@torch.inference_mode()
def generate_frames(
    model: VoxtralTTS,
    prompt_embeds: torch.Tensor,
    noise: NoiseSource,
    max_frames: int,
    cfg_alpha: float,
    n_steps: int,
    stop_on_end: bool = True,
) -> Iterator[FrameStep]:
    """Yield frames until `[END_AUDIO]` (yielded, then stop) or ``max_frames``.

    ``stop_on_end=False`` (forced-length benchmarks) replaces an END code by the first real code and goes on.
    """
    backbone, flow = model.backbone, model.acoustic_transformer
    n_prompt = prompt_embeds.shape[0]
    cache = backbone.new_cache(1, n_prompt + max_frames)
    alpha = torch.tensor([cfg_alpha], device=prompt_embeds.device)
    hidden = backbone(prompt_embeds[None], cache, 0)[:, -1]
    for i in range(max_frames):
        x0 = noise(i).to(device=hidden.device, dtype=torch.float32)[None]
        codes, x = flow(hidden, x0, alpha, n_steps)
        if not stop_on_end and int(codes[0, 0]) == END_AUDIO_CODE:
            codes[0, 0] = END_AUDIO_CODE + 1
        step = FrameStep(i, codes[0], hidden[0], x[0])
        yield step
        if step.is_end or i + 1 == max_frames:
            return
        feedback = model.audio_embeddings(codes)[:, None]  # [1, 1, dim]
        hidden = backbone(feedback, cache, n_prompt + i)[:, -1]
