"""The causal transformer: shapes, causality, KV cache == full forward, seeded init, sizes."""

from __future__ import annotations

import pytest
import torch

from gamescale.algorithms.lm.model import TransformerConfig, build_model, count_parameters


def tiny(**kw) -> TransformerConfig:
    base = dict(vocab_size=11, context_length=16, d_model=32, n_layers=2, n_heads=4, d_ff=64)
    return TransformerConfig(**{**base, **kw})


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_forward_shape_and_causality(positions):
    model = build_model(tiny(positions=positions), seed=0).eval()
    tokens = torch.randint(0, 11, (3, 10), generator=torch.Generator().manual_seed(1))
    logits = model(tokens)
    assert logits.shape == (3, 10, 11) and logits.dtype == torch.float32
    changed = tokens.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 11
    # positions before the change cannot see it
    torch.testing.assert_close(model(changed)[:, :6], logits[:, :6])
    assert not torch.allclose(model(changed)[:, 6:], logits[:, 6:])


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_kv_cache_matches_full_forward(positions):
    model = build_model(tiny(positions=positions), seed=3).eval()
    tokens = torch.randint(0, 11, (2, 12), generator=torch.Generator().manual_seed(2))
    full = model(tokens)
    cache = model.init_cache(2)
    pieces = [model(tokens[:, :5], cache)]  # prefill several tokens at once
    for t in range(5, 9):
        pieces.append(model(tokens[:, t : t + 1], cache))
    pieces.append(model(tokens[:, 9:], cache))  # a multi-token chunk onto a non-empty cache
    assert cache.length == 12
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


def test_seeded_init_is_deterministic_and_seed_dependent():
    a, b, c = build_model(tiny(), 7), build_model(tiny(), 7), build_model(tiny(), 8)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.head.weight, c.head.weight)


def test_parameter_count_matches_formula_and_spans_the_range():
    cfg = tiny()
    d, f, v, n, ctx = cfg.d_model, cfg.d_ff, cfg.vocab_size, cfg.n_layers, cfg.context_length
    per_block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d)
    expected = v * d + ctx * d + n * per_block + 2 * d + d * v
    assert count_parameters(build_model(cfg, 0)) == expected
    small = TransformerConfig(vocab_size=64, context_length=64, d_model=128, n_layers=2, n_heads=4, d_ff=512)
    large = TransformerConfig(vocab_size=512, context_length=256, d_model=512, n_layers=14, n_heads=8, d_ff=2048)
    assert 0.4e6 < count_parameters(build_model(small, 0)) < 1e6
    assert 40e6 < count_parameters(build_model(large, 0)) < 52e6


def test_bad_configs_and_inputs_name_the_problem():
    with pytest.raises(ValueError, match="divisible"):
        tiny(d_model=30)
    model = build_model(tiny(), 0)
    with pytest.raises(ValueError, match="longer than the context length 16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    cache = model.init_cache(1)
    model(torch.zeros(1, 10, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="context length"):
        model(torch.zeros(1, 7, dtype=torch.long), cache)


def test_gradients_reach_every_parameter():
    model = build_model(tiny(dropout=0.1), 0).train()
    model(torch.randint(0, 11, (2, 8))).logsumexp(-1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
