"""The conditional music model: condition dropout, CFG logits and sampling, the CFG
distillation loss, the diversity reward and weight interpolation (tiny models, seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from gamescale.algorithms.lm.model import torch_threads
from gamescale.algorithms.lm.sampling import sample
from gamescale.algorithms.lm.shapes import ModelShape
from gamescale.algorithms.music.conditional import (
    PROMPT_TOKENS,
    build_conditional_model,
    cfg_logits,
    guided_logits,
    prompt_tensor,
    sample_cfg,
    sequence_loss,
    training_batch,
    unconditional,
)
from gamescale.algorithms.music.config import ConditionalMusicConfig
from gamescale.algorithms.music.distill import (
    cfg_distillation_loss,
    diversity_reward,
    interpolate_weights,
    token_count_embedding,
)
from gamescale.envs.music import vocab as V
from gamescale.envs.music.tokens import Notes, tokenize

TINY = ConditionalMusicConfig(model=ModelShape(d_model=32, n_layers=1, n_heads=2, d_ff=64), context_length=96)
PROMPTS = [
    V.make_prompt(collection="bach", key="G minor", meter="4/4", voices="4"),
    V.make_prompt(collection="ryansMammoth", key="D major", meter="6/8", lowest="4", highest="6", voices="1"),
]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models only lose from more threads on the shared 2-core machine."""
    with torch_threads(1):
        yield


def _scale_weights(model, factor: float):
    """A random model with larger weights, so that its prompt visibly changes its logits."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(factor)
    return model


def _pieces() -> list[np.ndarray]:
    """Two small synthetic pieces: a C major scale in 4/4 and a 6/8 arpeggio."""
    scale = Notes.build([0] * 8, np.arange(8) * 12, [12] * 8, [60, 62, 64, 65, 67, 69, 71, 72], [48, 48])
    arpeggio = Notes.build([0] * 6, np.arange(6) * 6, [6] * 6, [62, 66, 69, 74, 69, 66], [36])
    return [np.asarray(tokenize(scale)), np.asarray(tokenize(arpeggio))]


def test_cfg_logits_at_scale_one_and_zero_are_the_conditional_and_unconditional_logits():
    model = _scale_weights(build_conditional_model(TINY, seed=1), 5.0).eval()
    prompts = prompt_tensor(PROMPTS)
    tokens = torch.cat((prompts, torch.randint(V.BAR, V.PROMPT_BASE, (2, 12), generator=torch.Generator().manual_seed(0))), 1)
    with torch.no_grad():
        cond, uncond = model(tokens[:, :-1]), model(unconditional(tokens)[:, :-1])
        assert not torch.allclose(cond, uncond, atol=1e-3)  # the prompt matters, so the check can fail
        assert torch.equal(cfg_logits(cond, uncond, 1.0), cond)
        assert torch.equal(cfg_logits(cond, uncond, 0), uncond)
        assert torch.equal(guided_logits(model, tokens, 1.0), cond)
        three = cfg_logits(cond, uncond, 3.0)
        torch.testing.assert_close(three, cond + 2.0 * (cond - uncond), rtol=1e-5, atol=1e-5)


def test_cfg_sampling_at_scale_one_and_zero_matches_plain_sampling():
    model = _scale_weights(build_conditional_model(TINY, seed=1), 3.0)
    prompts = prompt_tensor(PROMPTS * 2)
    guided = sample_cfg(model, prompts, 24, 1.0, generator=torch.Generator().manual_seed(5))
    plain = sample(model, prompts, 24, generator=torch.Generator().manual_seed(5))
    assert torch.equal(guided.tokens, plain.tokens)
    torch.testing.assert_close(guided.logprobs, plain.logprobs, rtol=1e-4, atol=1e-4)
    free = sample_cfg(model, prompts, 24, 0.0, generator=torch.Generator().manual_seed(5))
    plain_free = sample(model, unconditional(prompts), 24, generator=torch.Generator().manual_seed(5))
    assert torch.equal(free.completions, plain_free.completions)
    strong = sample_cfg(model, prompts, 24, 4.0, generator=torch.Generator().manual_seed(5))
    assert not torch.equal(strong.tokens, guided.tokens)


@pytest.mark.parametrize("scale", ["loud", None, True, float("nan")])
def test_non_numeric_guidance_scale_is_a_one_line_error(scale):
    model = build_conditional_model(TINY)
    with pytest.raises(ValueError, match="guidance scale must be a finite number") as info:
        sample_cfg(model, prompt_tensor(PROMPTS), 4, scale, generator=torch.Generator().manual_seed(0))
    assert "\n" not in str(info.value)
    with pytest.raises(ValidationError, match="guidance_scale"):
        ConditionalMusicConfig(guidance_scale=scale)


def test_condition_dropout_batches():
    gen = torch.Generator().manual_seed(0)
    pieces = _pieces()
    tokens, mask = training_batch(pieces, PROMPTS, 64, 0.0, 0.0, gen)
    assert torch.equal(tokens[:, :PROMPT_TOKENS], prompt_tensor(PROMPTS))
    assert int(mask.sum()) == sum(len(p) - 1 for p in pieces)  # every music token after BOS, no padding
    dropped, _ = training_batch(pieces, PROMPTS, 64, 1.0, 0.0, gen)
    assert torch.equal(dropped[:, :PROMPT_TOKENS], unconditional(prompt_tensor(PROMPTS)))
    rows = training_batch(pieces * 200, PROMPTS * 200, 64, 0.25, 0.0, gen)[0][:, : V.PROMPT_LENGTH]
    share = float((rows == V.NULL).all(dim=1).float().mean())
    assert 0.2 < share < 0.3


def test_training_with_condition_dropout_learns_prompted_pieces():
    """Both pieces are learnt (loss falls) and the prompt tells them apart: the conditional
    likelihood of each piece beats the unconditional one."""
    torch.manual_seed(0)
    model = build_conditional_model(TINY, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    pieces = _pieces()
    eval_tokens, eval_mask = training_batch(pieces, PROMPTS, 96, 0.0, 0.0, gen)
    with torch.no_grad():
        before = float(sequence_loss(model, eval_tokens, eval_mask))
    for _ in range(40):
        tokens, mask = training_batch(pieces * 4, PROMPTS * 4, 96, 0.3, 0.1, gen)
        loss = sequence_loss(model, tokens, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = float(sequence_loss(model, eval_tokens, eval_mask))
        free = float(sequence_loss(model, unconditional(eval_tokens), eval_mask))
    assert after < 0.5 * before
    assert after < free


def test_cfg_distillation_loss_falls_and_student_moves_toward_the_cfg_teacher():
    teacher = _scale_weights(build_conditional_model(TINY, seed=1), 4.0)
    student = build_conditional_model(TINY, seed=2)
    prompts = prompt_tensor(PROMPTS * 8)
    gen = torch.Generator().manual_seed(0)
    heldout = sample_cfg(teacher, prompts, 20, 3.0, generator=torch.Generator().manual_seed(99)).tokens

    def measured_kl() -> float:
        with torch.no_grad():
            return float(cfg_distillation_loss(student, teacher, heldout, PROMPT_TOKENS, 3.0))

    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    start, losses = measured_kl(), []
    data = sample_cfg(teacher, prompt_tensor(PROMPTS * 32), 20, 3.0, generator=gen).tokens
    for step in range(30):
        tokens = data[(step % 4) * 16 : (step % 4 + 1) * 16]
        loss = cfg_distillation_loss(student, teacher, tokens, PROMPT_TOKENS, 3.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    assert measured_kl() < 0.7 * start


def test_diversity_reward_is_higher_for_different_sequences_than_for_copies():
    model = _scale_weights(build_conditional_model(TINY, seed=1), 3.0)
    prompts = prompt_tensor([PROMPTS[0]] * 6)
    different = sample_cfg(model, prompts, 32, 1.0, generator=torch.Generator().manual_seed(0)).tokens
    copies = different[:1].repeat(6, 1)
    reward_different = diversity_reward(token_count_embedding(different, PROMPT_TOKENS))
    reward_copies = diversity_reward(token_count_embedding(copies, PROMPT_TOKENS))
    torch.testing.assert_close(reward_copies, torch.zeros(6), atol=1e-6, rtol=0)
    assert float(reward_different.min()) > 0.05
    # closed form: two orthogonal embeddings are fully dissimilar
    torch.testing.assert_close(diversity_reward(torch.eye(2)), torch.ones(2))


def test_weight_interpolation_is_exact_at_zero_and_one():
    first, second = build_conditional_model(TINY, seed=3), build_conditional_model(TINY, seed=4)
    tokens = torch.cat((prompt_tensor(PROMPTS), torch.full((2, 6), V.pitch_token(60))), 1)
    mixed = build_conditional_model(TINY, seed=5)
    with torch.no_grad():
        ends = [first(tokens), second(tokens)]
        for mix, expected in ((0.0, ends[0]), (1.0, ends[1])):
            mixed.load_state_dict(interpolate_weights(first.state_dict(), second.state_dict(), mix))
            assert torch.equal(mixed(tokens), expected)
        mixed.load_state_dict(interpolate_weights(first.state_dict(), second.state_dict(), 0.5))
        half = mixed(tokens)
        assert not torch.equal(half, ends[0]) and not torch.equal(half, ends[1])
    with pytest.raises(ValueError, match="shapes differ"):
        wide = build_conditional_model(TINY.model_copy(update={"model": ModelShape(d_model=64, n_layers=1, n_heads=2, d_ff=64)}))
        interpolate_weights(first.state_dict(), wide.state_dict(), 0.5)
