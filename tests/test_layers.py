"""Shared layers: a block asked for its first positions only gives exactly those rows of the full block."""

from __future__ import annotations

import pytest
import torch

from speechserve.models.layers import TransformerBlock


@pytest.mark.parametrize("queries", [1, 2])
def test_queries_give_the_first_rows_of_the_full_block(queries: int) -> None:
    torch.manual_seed(0)
    block = TransformerBlock(dim=64, n_heads=4, n_kv_heads=2, head_dim=16, hidden_dim=96, norm_eps=1e-5)
    x = torch.randn(5, 3, 64)
    with torch.inference_mode():
        full = block(x, causal=False)
        first = block(x, causal=False, queries=queries)
    assert first.shape == (5, queries, 64)
    torch.testing.assert_close(first, full[:, :queries], rtol=1e-5, atol=1e-6)


def test_queries_are_refused_with_a_causal_mask() -> None:
    block = TransformerBlock(dim=32, n_heads=2, n_kv_heads=2, head_dim=16, hidden_dim=64, norm_eps=1e-5)
    with pytest.raises(AssertionError, match="bidirectional"):
        block(torch.randn(1, 3, 32), causal=True, queries=1)


def test_the_flow_head_velocity_equals_the_full_last_layer(tiny_tts) -> None:
    """Voxtral TTS's flow reads token 0 only; computing just that row in its last layer changes nothing."""
    flow = tiny_tts.model.acoustic_transformer
    gen = torch.Generator().manual_seed(1)
    n, dim = 4, flow.cfg.dim
    x = torch.randn(n, flow.codes_cfg.n_acoustic_codebook, generator=gen)
    t_proj, cond = torch.randn(dim, generator=gen), torch.randn(n, dim, generator=gen)
    with torch.inference_mode():
        got = flow.velocity(x, t_proj, cond)
        tokens = torch.stack((flow.input_projection(x), t_proj.expand_as(cond), cond), dim=1)
        for layer in flow.layers:
            tokens = layer(tokens, causal=False)
        want = flow.acoustic_codebook_output(flow.norm(tokens)[:, 0])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
