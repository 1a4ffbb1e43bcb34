"""Sampling: KV-cached == uncached for a seed, log-probs agree with `token_logprobs`,
temperature / top-k behave, and empirical frequencies match the model's distribution."""

from __future__ import annotations

import pytest
import torch

from gamescale.algorithms.lm.model import TransformerConfig, build_model
from gamescale.algorithms.lm.sampling import sample, sequence_logprob, token_logprobs

CFG = TransformerConfig(vocab_size=13, context_length=24, d_model=32, n_layers=2, n_heads=4, d_ff=64)


def prompts(batch=6, length=4, seed=0):
    return torch.randint(0, 13, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("positions", ["learned", "rotary"])
@pytest.mark.parametrize("temperature,top_k", [(1.0, None), (0.7, 5)])
def test_cached_and_uncached_sampling_give_the_same_tokens(positions, temperature, top_k):
    model = build_model(CFG.model_copy(update={"positions": positions}), seed=1)
    kw = dict(max_new_tokens=16, temperature=temperature, top_k=top_k)
    a = sample(model, prompts(), generator=torch.Generator().manual_seed(5), use_cache=True, **kw)
    b = sample(model, prompts(), generator=torch.Generator().manual_seed(5), use_cache=False, **kw)
    assert torch.equal(a.tokens, b.tokens)
    torch.testing.assert_close(a.logprobs, b.logprobs, atol=1e-5, rtol=1e-5)
    c = sample(model, prompts(), generator=torch.Generator().manual_seed(6), **kw)
    assert not torch.equal(a.tokens, c.tokens)


def test_logprobs_match_token_logprobs_and_sequence_logprob():
    model = build_model(CFG, seed=2)
    s = sample(model, prompts(), 10, generator=torch.Generator().manual_seed(0))
    assert s.tokens.shape == (6, 14) and s.logprobs.shape == (6, 10)
    assert torch.equal(s.tokens[:, :4], prompts())
    with torch.no_grad():
        exact = token_logprobs(model, s.tokens)[:, 3:]
        total = sequence_logprob(model, s.tokens, 4)
    torch.testing.assert_close(s.logprobs, exact, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s.sampling_logprobs, s.logprobs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(total, exact.sum(1), atol=1e-5, rtol=1e-5)


def test_top_k_only_draws_the_k_most_likely_tokens():
    model = build_model(CFG, seed=3)
    s = sample(model, prompts(64), 1, top_k=2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        top2 = model(prompts(64))[:, -1].topk(2).indices
    assert (top2 == s.tokens[:, -1:]).any(dim=1).all()
    # the sampling log-probs are renormalised over the two: each > log of its full prob
    assert (s.sampling_logprobs >= s.logprobs - 1e-6).all()


def test_empirical_next_token_frequencies_match_the_model():
    model = build_model(CFG, seed=4)
    # sharpen the model a little so the frequencies are informative
    with torch.no_grad():
        model.head.weight.mul_(40.0)
    prompt = prompts(1, 3).expand(20000, 3)
    s = sample(model, prompt, 1, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        probs = model(prompt[:1]).softmax(-1)[0, -1]
    freq = torch.bincount(s.tokens[:, -1], minlength=13).double() / 20000
    # 5 standard errors of a binomial proportion
    assert ((freq - probs.double()).abs() <= 5 * (probs.double() * (1 - probs.double()) / 20000).sqrt() + 1e-4).all()


def test_bad_sampling_input_names_the_problem():
    model = build_model(CFG, 0)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="longer than the context length 24"):
        sample(model, prompts(2, 20), 5, generator=g)
    with pytest.raises(ValueError, match="temperature"):
        sample(model, prompts(), 2, temperature=0.0, generator=g)
    with pytest.raises(ValueError, match="token ids"):
        sample(model, torch.full((1, 3), 13), 2, generator=g)
