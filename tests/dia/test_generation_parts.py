"""Text bytes, the delay pattern and its bookkeeping, and the sampler's order of operations."""

from __future__ import annotations

import pytest
import torch

from speechserve.errors import InvalidRequest
from speechserve.models.dia.delay import DelayedRows, apply_delay, revert_delay
from speechserve.models.dia.options import DiaOptions
from speechserve.models.dia.sampling import cfg_filter, new_generator, sample_rows
from speechserve.models.dia.text import encode_text

D = (0, 8, 9, 10, 11, 12, 13, 14, 15)
BOS, EOS, PAD = 1026, 1024, 1025


def test_text_is_utf8_bytes_with_speaker_tags() -> None:
    assert encode_text("[S1] Hi", 1024) == [1, 32, 72, 105]
    assert encode_text("[S2] (laughs) é", 1024) == [2, 32, *b"(laughs)", 32, 0xC3, 0xA9]
    with pytest.raises(InvalidRequest, match="empty"):
        encode_text("  ", 1024)
    with pytest.raises(InvalidRequest, match="5 bytes long"):
        encode_text("[S1] Hi!", 4)


def test_delay_applied_and_reverted_exactly() -> None:
    frames = torch.randint(0, 1024, (20, 9))
    delayed = apply_delay(frames, D, BOS, PAD)
    assert delayed.shape == (35, 9)
    for c, d in enumerate(D):
        assert torch.all(delayed[:d, c] == BOS) and torch.equal(delayed[d : d + 20, c], frames[:, c])
        assert torch.all(delayed[d + 20 :, c] == PAD)
    assert torch.equal(revert_delay(delayed, D), frames)


def _run(rows: DelayedRows, picks: list[torch.Tensor]) -> None:
    for pick in picks:
        if rows.finished:
            break
        rows.accept(pick)


def test_bos_rows_eos_countdown_and_frames() -> None:
    rows = DelayedRows(D, BOS, EOS, PAD, max_rows=100)
    picks = (
        [torch.full((9,), 7 + t) for t in range(30)]
        + [torch.tensor([EOS] + [5] * 8)]
        + [torch.full((9,), 3)] * 30
    )
    _run(rows, picks)
    r = rows.rows
    for c, d in enumerate(D):  # channel c holds BOS in rows 0..D[c] (16 BOS rows for channel 8)
        assert torch.all(r[: d + 1, c] == BOS) and r[d + 1, c] != BOS
    assert rows.eos_row == 31 and rows.natural_eos and rows.finished and rows.n_rows == 31 + 15 + 1
    for c, d in enumerate(D):  # EOS lands on the same undelayed frame in every channel, PAD after it
        assert r[31 + d, c] == EOS and torch.all(r[32 + d : 47, c] == PAD)
    assert rows.n_frames == rows.n_complete == 30
    codes = rows.frames(0, 30)
    assert torch.equal(codes, revert_delay(r[1:47], D)[:30]) and int(codes.max()) < 1024


def test_eos_forced_at_max_rows_minus_max_delay() -> None:
    rows = DelayedRows(D, BOS, EOS, PAD, max_rows=40)
    _run(rows, [torch.full((9,), 9)] * 60)
    assert rows.eos_row == 25 and not rows.natural_eos and rows.n_frames == 24 and rows.n_rows == 41


def test_frames_complete_only_when_the_slowest_channel_has_written_them() -> None:
    rows = DelayedRows(D, BOS, EOS, PAD, max_rows=100)
    seen = []
    for t in range(20):
        rows.accept(torch.full((9,), t))
        seen.append(rows.n_complete)
    assert seen[:15] == [0] * 15 and seen[15:] == [1, 2, 3, 4, 5]  # frame 0 complete with row 16


def test_audio_prompt_cells_are_forced() -> None:
    prompt = torch.randint(0, 1024, (5, 9))
    rows = DelayedRows(D, BOS, EOS, PAD, max_rows=100, prompt=prompt)
    assert rows.n_prefix == 6 and torch.all(rows.rows[0] == BOS)
    _run(rows, [torch.full((9,), 1000)] * 20)
    undelayed = revert_delay(rows.rows[: rows.n_rows], D)
    assert torch.equal(undelayed[1:6], prompt)  # the prompt survives the lagging channels' forced cells
    assert torch.all(undelayed[6:] == 1000)


def test_cfg_filter_takes_top_k_of_guided_values_from_conditional() -> None:
    cond, uncond = torch.randn(2, 9, 1028), torch.randn(2, 9, 1028)
    out = cfg_filter(cond, uncond, 3.0, 45, EOS)
    guided = cond + 3.0 * (cond - uncond)
    top = guided.topk(45, dim=-1).indices
    finite = torch.isfinite(out)
    assert torch.all(finite.sum(-1) <= 45)
    assert torch.equal(out[finite], cond[finite])
    assert torch.all(finite.scatter(-1, top, False) == False)  # noqa: E712 — candidates ⊆ top-k of G
    assert not finite[:, 0, EOS + 1 :].any() and not finite[:, 1:, EOS:].any()


def test_greedy_is_the_argmax_of_the_filter() -> None:
    cond, uncond = torch.randn(3, 9, 1028), torch.randn(3, 9, 1028)
    opts = [DiaOptions(temperature=0.0)] * 3
    picks = sample_rows(cond, uncond, opts, [new_generator(0)] * 3, EOS)
    assert torch.equal(picks, cfg_filter(cond, uncond, 3.0, 45, EOS).argmax(-1))


def test_sampling_is_reproducible_and_respects_the_filter() -> None:
    cond, uncond = 3 * torch.randn(2, 9, 1028), torch.randn(2, 9, 1028)
    opts = [DiaOptions(seed=1), DiaOptions(seed=2, top_p=0.5, temperature=0.8)]
    fresh = [sample_rows(cond, uncond, opts, [new_generator(1), new_generator(2)], EOS) for _ in range(2)]
    assert torch.equal(fresh[0], fresh[1])
    finite = torch.isfinite(cfg_filter(cond, uncond, 3.0, 45, EOS))
    assert finite.gather(-1, fresh[0][..., None]).all()
    tiny_nucleus = [DiaOptions(seed=3, top_p=1e-6)] * 2
    picks = sample_rows(cond, uncond, tiny_nucleus, [new_generator(3), new_generator(4)], EOS)
    assert torch.equal(picks, cfg_filter(cond, uncond, 3.0, 45, EOS).argmax(-1))  # only the top id is left


def test_eos_is_chosen_deterministically_when_it_is_on_top() -> None:
    cond = torch.randn(1, 9, 1028)
    cond[0, 0, EOS] = 50.0
    uncond = cond.clone()
    for seed in range(5):
        picks = sample_rows(cond, uncond, [DiaOptions(seed=seed)], [new_generator(seed)], EOS)
        assert picks[0, 0] == EOS and torch.all(picks[0, 1:] < 1024)


def test_options_are_validated() -> None:
    for bad in ({"top_p": 0.0}, {"top_k": 0}, {"temperature": -1.0}, {"max_tokens": 0}, {"cfg_scale": 99.0}):
        with pytest.raises(InvalidRequest):
            DiaOptions(**bad)  # type: ignore[arg-type]
