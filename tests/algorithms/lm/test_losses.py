"""Divergences agree with exact enumeration on a tiny vocabulary; masks and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gamescale.algorithms.lm.losses import (
    divergence,
    forward_kl,
    generalized_jsd,
    reverse_kl,
    sequence_distance,
)
from gamescale.algorithms.lm.model import TransformerConfig, build_model
from gamescale.algorithms.lm.tokenizer import ByteTokenizer


def kl_enum(p, q):
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True) if pi > 0)


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def test_divergences_match_enumeration_on_a_tiny_vocabulary():
    rng = np.random.default_rng(0)
    p_logits, q_logits = rng.normal(size=(2, 3, 5)) * 2, rng.normal(size=(2, 3, 5)) * 2
    mask = np.array([[1, 1, 0], [1, 0, 1]], dtype=bool)
    fwd, rev, jsd, jsd2 = [], [], [], []
    for b, t in zip(*np.nonzero(mask), strict=True):
        p, q = softmax(p_logits[b, t]), softmax(q_logits[b, t])
        fwd.append(kl_enum(p, q))
        rev.append(kl_enum(q, p))
        m = 0.5 * p + 0.5 * q
        jsd.append(0.5 * kl_enum(p, m) + 0.5 * kl_enum(q, m))
        m2 = 0.2 * p + 0.8 * q
        jsd2.append(0.2 * kl_enum(p, m2) + 0.8 * kl_enum(q, m2))
    P, Q, M = torch.tensor(p_logits), torch.tensor(q_logits), torch.tensor(mask)
    assert forward_kl(P, Q, M).item() == pytest.approx(np.mean(fwd), rel=1e-5)
    assert reverse_kl(P, Q, M).item() == pytest.approx(np.mean(rev), rel=1e-5)
    assert generalized_jsd(P, Q, M).item() == pytest.approx(np.mean(jsd), rel=1e-5)
    assert generalized_jsd(P, Q, M, beta=0.2).item() == pytest.approx(np.mean(jsd2), rel=1e-5)
    assert divergence("reverse_kl", P, Q, M).item() == pytest.approx(np.mean(rev), rel=1e-5)
    # JSD is bounded by log 2 and symmetric at beta = 0.5
    assert generalized_jsd(P, Q, M).item() <= math.log(2)
    assert generalized_jsd(Q, P, M).item() == pytest.approx(np.mean(jsd), rel=1e-5)


def test_zero_probability_targets_and_identical_distributions():
    p = torch.tensor([[0.0, -float("inf"), 1.0]])
    assert forward_kl(p, p).item() == pytest.approx(0.0, abs=1e-7)
    q = torch.zeros(1, 3)
    expected = kl_enum(softmax(np.array([0.0, -np.inf, 1.0])), [1 / 3] * 3)
    assert forward_kl(p, q).item() == pytest.approx(expected, rel=1e-6)


def test_sequence_distance_matches_enumeration_of_the_vocabulary():
    cfg = TransformerConfig(vocab_size=5, context_length=8, d_model=16, n_layers=1, n_heads=2, d_ff=32)
    teacher, student = build_model(cfg, 0), build_model(cfg, 1)
    with torch.no_grad():
        teacher.head.weight.mul_(30)
    tokens = torch.randint(0, 5, (3, 7), generator=torch.Generator().manual_seed(0))
    d = sequence_distance(teacher, student, tokens, prompt_length=3)
    with torch.no_grad():
        p = teacher(tokens).softmax(-1).double()
        q = student(tokens).softmax(-1).double()
    expected = [np.mean([kl_enum(p[b, t].tolist(), q[b, t].tolist()) for t in range(2, 6)]) for b in range(3)]
    np.testing.assert_allclose(d.numpy(), expected, rtol=1e-4)


def test_mismatched_vocabularies_name_the_problem():
    with pytest.raises(ValueError, match="mismatched vocabularies"):
        forward_kl(torch.zeros(2, 5), torch.zeros(2, 6))
    with pytest.raises(ValueError, match="unknown divergence"):
        divergence("tv", torch.zeros(2, 5), torch.zeros(2, 5))


def test_gradient_of_forward_kl_is_q_minus_p():
    p_logits = torch.randn(4, 7)
    q_logits = torch.randn(4, 7, requires_grad=True)
    forward_kl(p_logits, q_logits).backward()
    expected = (q_logits.softmax(-1) - p_logits.softmax(-1)) / 4
    torch.testing.assert_close(q_logits.grad, expected.detach())


def test_byte_tokenizer_round_trips_and_pads():
    tok = ByteTokenizer()
    for text in ["", "hello", "héllo wörld ✓"]:
        ids = tok.encode(text, add_bos=True, add_eos=True)
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert tok.decode(ids) == text
    ids, mask = tok.encode_batch(["ab", "abcd"])
    assert ids.shape == (2, 5) and mask.sum().item() == 8 and ids[0, -1] == tok.pad_id
    assert tok.decode_batch(ids) == ["ab", "abcd"]
    with pytest.raises(ValueError, match="longer than the length 3"):
        tok.encode_batch(["abcd"], length=3)
