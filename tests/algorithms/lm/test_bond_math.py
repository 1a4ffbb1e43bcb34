"""BOND's model-free mathematics (gamescale/algorithms/lm/bond.py): the Best-of-N closed
form against Monte-Carlo sampling, the quantile estimate's convergence to it, and the
sample-based loss gradients against exact gradients on a small discrete policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gamescale.algorithms.lm import bond

# A small discrete "policy" over 6 outcomes, with a tie between outcomes 1 and 4.
PROBS = np.array([0.30, 0.05, 0.25, 0.15, 0.10, 0.15])
REWARDS = np.array([0.0, 1.0, -0.5, 2.0, 1.0, 0.3])


@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_best_of_n_closed_form_matches_monte_carlo(n):
    exact = bond.best_of_n_probs(PROBS, REWARDS, n)
    assert exact.sum() == pytest.approx(1.0, abs=1e-12)
    samples = 200_000
    drawn = bond.sample_best_of_n(PROBS, REWARDS, n, samples, np.random.default_rng(n))
    empirical = np.bincount(drawn, minlength=len(PROBS)) / samples
    sigma = np.sqrt(exact * (1 - exact) / samples)
    assert np.all(np.abs(empirical - exact) <= 5 * sigma + 1e-9), (empirical, exact)
    if n == 1:
        np.testing.assert_allclose(exact, PROBS)


def test_tied_outcomes_share_in_proportion_to_the_policy():
    exact = bond.best_of_n_probs(PROBS, REWARDS, 5)
    assert exact[1] / exact[4] == pytest.approx(PROBS[1] / PROBS[4])


def test_best_of_two_twice_is_best_of_four():
    # Iterated BOND with a moving anchor: distilling Best-of-2 of Best-of-2 is Best-of-4.
    twice = bond.best_of_n_probs(bond.best_of_n_probs(PROBS, REWARDS, 2), REWARDS, 2)
    np.testing.assert_allclose(twice, bond.best_of_n_probs(PROBS, REWARDS, 4), atol=1e-12)


def test_kl_of_best_of_n_meets_log_n_bound():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4000))
    rewards = rng.normal(size=4000)  # no ties: the bound is nearly exact
    for n in (2, 4, 16):
        value = bond.kl(bond.best_of_n_probs(probs, rewards, n), probs)
        assert value <= bond.best_of_n_kl_bound(n) + 1e-9
        assert value == pytest.approx(bond.best_of_n_kl_bound(n), abs=0.01)
    # With ties the KL is strictly below the bound.
    assert bond.kl(bond.best_of_n_probs(PROBS, REWARDS, 4), PROBS) < bond.best_of_n_kl_bound(4)


def test_quantile_estimate_converges_to_the_closed_form():
    n = 4
    exact = bond.best_of_n_probs(PROBS, REWARDS, n)
    errors = []
    for k in (10, 100, 1000, 10_000):
        tv = []
        for seed in range(20):
            anchors = np.random.default_rng([k, seed]).choice(len(PROBS), size=k, p=PROBS)
            estimate = bond.best_of_n_estimate_probs(PROBS, REWARDS, n, anchors)
            tv.append(0.5 * np.abs(estimate - exact).sum())
        errors.append(float(np.mean(tv)))
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 0.02, errors
    # Roughly the Monte-Carlo rate: 100x the samples, about 10x smaller error.
    assert errors[-1] < errors[1] / 4, errors


def test_quantile_estimate_counts_anchor_samples():
    anchors = np.array([[0.0, 1.0, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0]])
    rewards = np.array([1.0, 5.0])
    np.testing.assert_allclose(bond.quantile_estimate(rewards, anchors), [0.5, 1.0])
    np.testing.assert_allclose(bond.quantile_estimate(rewards, anchors, strict=True), [0.25, 0.0])
    np.testing.assert_allclose(bond.quantile_estimate(rewards, anchors, prior=1.0), [3 / 5, 1.0])
    with pytest.raises(ValueError, match="anchor rewards"):
        bond.quantile_estimate(rewards, anchors[:1])


def test_bad_n_and_beta_are_named():
    with pytest.raises(ValueError, match="N >= 1"):
        bond.best_of_n_probs(PROBS, REWARDS, 0)
    with pytest.raises(ValueError, match="beta"):
        bond.jeffreys(PROBS, PROBS, 1.5)


def _exact_and_sampled_gradient(loss_of_samples, exact_loss, samples=200_000, seed=0):
    """Gradient wrt the logits of a categorical policy: exact (autograd of the closed form)
    and the sample-based surrogate averaged over many samples."""
    logits0 = torch.tensor(np.log(PROBS) + np.random.default_rng(seed).normal(scale=0.3, size=len(PROBS)))
    logits = logits0.clone().requires_grad_(True)
    exact_loss(torch.log_softmax(logits, 0)).backward()
    exact = logits.grad.clone()
    logits = logits0.clone().requires_grad_(True)
    generator = torch.Generator().manual_seed(seed)
    loss_of_samples(torch.log_softmax(logits, 0), generator, samples).backward()
    return exact.numpy(), logits.grad.numpy()


def test_backward_kl_surrogate_gradient_matches_exact():
    target = torch.tensor(bond.best_of_n_probs(PROBS, REWARDS, 4))

    def exact_loss(logp):
        return torch.sum(logp.exp() * (logp - target.log()))

    def sampled(logp, generator, samples):
        y = torch.multinomial(logp.exp().detach(), samples, replacement=True, generator=generator)
        return bond.backward_kl_loss(logp[y], target.log()[y])

    exact, estimate = _exact_and_sampled_gradient(sampled, exact_loss)
    np.testing.assert_allclose(estimate, exact, atol=0.01)


def test_jeffreys_surrogate_gradient_matches_exact():
    target = torch.tensor(bond.best_of_n_probs(PROBS, REWARDS, 3))
    beta = 0.5

    def exact_loss(logp):
        forward = torch.sum(target * (target.log() - logp))
        backward = torch.sum(logp.exp() * (logp - target.log()))
        return (1 - beta) * forward + beta * backward

    def sampled(logp, generator, samples):
        y = torch.multinomial(logp.exp().detach(), samples, replacement=True, generator=generator)
        y_bon = torch.multinomial(target, samples, replacement=True, generator=generator)
        return bond.jeffreys_loss(logp[y_bon], logp[y], target.log()[y], beta)

    exact, estimate = _exact_and_sampled_gradient(sampled, exact_loss)
    np.testing.assert_allclose(estimate, exact, atol=0.01)


def test_reinforce_kl_surrogate_gradient_matches_exact():
    reward = torch.tensor(REWARDS)
    ref = torch.tensor(np.log(PROBS))
    coef = 0.3

    def exact_loss(logp):
        p = logp.exp()
        return -(torch.sum(p * reward) - coef * torch.sum(p * (logp - ref)))

    def sampled(logp, generator, samples):
        y = torch.multinomial(logp.exp().detach(), samples, replacement=True, generator=generator)
        return bond.reinforce_kl_loss(logp[y], reward[y], ref[y], coef)

    exact, estimate = _exact_and_sampled_gradient(sampled, exact_loss)
    np.testing.assert_allclose(estimate, exact, atol=0.01)


def test_jeffreys_descent_on_logits_reaches_best_of_n():
    # Minimising the exact Jeffreys divergence over a free categorical recovers pi_BoN.
    target = torch.tensor(bond.best_of_n_probs(PROBS, REWARDS, 4))
    logits = torch.zeros(len(PROBS), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.05)
    for _ in range(2000):
        logp = torch.log_softmax(logits, 0)
        loss = 0.5 * torch.sum(target * (target.log() - logp)) + 0.5 * torch.sum(logp.exp() * (logp - target.log()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = torch.softmax(logits, 0).detach().numpy()
    assert bond.jeffreys(final, target.numpy(), 0.5) < 1e-6
