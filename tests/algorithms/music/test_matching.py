"""The prompt-music matcher: trained contrastively it retrieves the prompt of unseen music
far above chance, and its music embedding gives copies zero diversity (synthetic pieces
whose key and meter the prompt states, so the right answer is known; seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gamescale.algorithms.lm.model import torch_threads
from gamescale.algorithms.music.config import MatcherConfig
from gamescale.algorithms.music.distill import diversity_reward
from gamescale.algorithms.music.matching import match_scores, piece_windows, retrieval_accuracy, train_matcher
from gamescale.envs.music import vocab as V
from gamescale.envs.music.tokens import Notes, tokenize

MAJOR = (0, 2, 4, 5, 7, 9, 11)
CASES = [("C", "4/4", 48), ("F#", "4/4", 48), ("C", "3/4", 36), ("F#", "3/4", 36), ("E-", "6/8", 36), ("A", "2/4", 24)]


@pytest.fixture(autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


def _piece(tonic: str, bar: int, rng: np.random.Generator) -> np.ndarray:
    """Four bars of random notes from the major scale of `tonic`, in eighths (6 ticks)."""
    root = 60 + V.TONICS.index(tonic)
    count = 4 * bar // 6
    pitches = root + np.array(MAJOR)[rng.integers(0, 7, count)] + 12 * rng.integers(-1, 1, count)
    return np.asarray(tokenize(Notes.build([0] * count, np.arange(count) * 6, [6] * count, pitches, [bar] * 4)))


def _data(per_case: int, seed: int):
    rng = np.random.default_rng(seed)
    pieces, prompts = [], []
    for tonic, meter, bar in CASES:
        prompt = V.make_prompt(key=f"{tonic} major", meter=meter, voices="1").tokens()
        for _ in range(per_case):
            pieces.append(_piece(tonic, bar, rng))
            prompts.append(prompt)
    return piece_windows(pieces, 48), torch.tensor(prompts)


def test_matcher_retrieves_the_prompt_of_unseen_music_and_scores_it_highest():
    config = MatcherConfig(dim=16, hidden=32, music_tokens=48, steps=150, batch_size=24)
    music, prompts = _data(12, seed=0)
    model, losses = train_matcher(config, music, prompts, seed=0)
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    held_music, held_prompts = _data(5, seed=1)
    accuracy = retrieval_accuracy(model, held_prompts, held_music)
    assert accuracy > 0.8, accuracy  # chance: 1/6
    # each piece matches its own prompt better than the prompt of another key and meter
    other = torch.roll(held_prompts, shifts=5, dims=0)
    assert (match_scores(model, held_prompts, held_music) > match_scores(model, other, held_music)).float().mean() > 0.9


def test_matcher_embedding_gives_copies_zero_diversity_and_different_pieces_more():
    config = MatcherConfig(dim=16, hidden=32, music_tokens=48, steps=0)
    model, _ = train_matcher(config, *_data(2, seed=0), seed=0)
    music, _ = _data(1, seed=2)
    with torch.no_grad():
        copies = model.embed_music(music[:1].repeat(4, 1))
        different = model.embed_music(music[:4])
    assert torch.allclose(diversity_reward(copies), torch.zeros(4), atol=1e-5)
    assert float(diversity_reward(different).mean()) > 1e-3
