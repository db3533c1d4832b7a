"""`cox._efron_terms` evaluates Efron's terms at the tied deaths only (not on the whole time x tie-size grid) and
sums only the event rows for the tied sums: the same likelihood, score and information to the last bit as the
whole-grid arithmetic it replaced (kept here as the reference), so no table of the workflow moves."""

from __future__ import annotations

import numpy as np
import pytest

from ferrostem import cox


def _whole_grid_terms(time, event, x, mask, beta):
    """The whole-grid implementation (ferrostem 0265b7d..baf0e68), for comparison."""
    k, n, p = x.shape
    eta = np.einsum("knp,kp->kn", x, beta)
    eta = np.where(mask > 0, eta, 0.0)
    shift = eta.max(axis=1, keepdims=True)
    risk = mask * np.exp(eta - shift)
    rx = risk[:, :, None] * x
    rxx = rx[:, :, :, None] * x[:, :, None, :]
    event_times = np.unique(time[event == 1])
    start = np.searchsorted(time, event_times, side="left")
    stop = np.searchsorted(time, event_times, side="right")

    def at_risk(values):
        return np.flip(np.cumsum(np.flip(values, axis=1), axis=1), axis=1)[:, start]

    def tied(values):
        cumulative = np.cumsum(values * event.reshape((1, n) + (1,) * (values.ndim - 2)), axis=1)
        cumulative = np.concatenate([np.zeros_like(cumulative[:, :1]), cumulative], axis=1)
        return cumulative[:, stop] - cumulative[:, start]

    s0, s1, s2 = at_risk(risk), at_risk(rx), at_risk(rxx)
    d0, d1, d2 = tied(risk), tied(rx), tied(rxx)
    deaths = tied(mask)
    largest = max(int(np.max([event[a:b].sum() for a, b in zip(start, stop)], initial=0)), int(deaths.max(initial=0)))
    steps = np.arange(max(largest, 1))
    valid = steps[None, None, :] < deaths[:, :, None]
    frac = np.where(valid, steps[None, None, :] / np.maximum(deaths[:, :, None], 1), 0.0)
    a0 = np.where(valid, s0[:, :, None] - frac * d0[:, :, None], 1.0)
    a1 = s1[:, :, None, :] - frac[..., None] * d1[:, :, None, :]
    a2 = s2[:, :, None, :, :] - frac[..., None, None] * d2[:, :, None, :, :]
    mean = a1 / a0[..., None]
    weight = valid.astype(float)
    event_mask = mask * event[None, :]
    loglik = np.sum(event_mask * (eta - shift), axis=1) - np.sum(weight * np.log(a0), axis=(1, 2))
    score = np.einsum("kn,knp->kp", event_mask, x) - np.einsum("ktl,ktlp->kp", weight, mean)
    info = np.einsum("ktl,ktlpq->kpq", weight, a2 / a0[..., None, None] - mean[..., :, None] * mean[..., None, :])
    means = np.einsum("ktl,ktlp->ktp", weight, mean) / np.maximum(deaths, 1)[:, :, None]
    return loglik, score, info, means


@pytest.mark.parametrize("seed", range(6))
def test_efron_terms_equal_the_whole_grid_to_the_last_bit(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        k, n, p = int(rng.choice([1, 3, 30, 200])), int(rng.integers(5, 250)), int(rng.integers(1, 5))
        time = np.round(rng.exponential(3, n), int(rng.integers(0, 3))) + 0.01  # rounded: tied times
        event = (rng.random(n) < rng.uniform(0.05, 0.9)).astype(int)
        x = rng.normal(size=(k, n, p)) * rng.uniform(0.1, 10)
        if rng.random() < 0.5:  # bootstrap draw counts as case weights: ties of many deaths
            mask = np.zeros((k, n))
            np.add.at(mask, (np.repeat(np.arange(k), n), rng.integers(0, n, k * n)), 1.0)
        else:  # models with rows left out (0/1 mask, missing covariates)
            mask = (rng.random((k, n)) < 0.9).astype(float)
            x[rng.random((k, n, p)) < 0.02] = np.nan
        time_, event_, x_, mask_ = cox._prepare(time, event, x, mask)
        beta = rng.normal(0, 0.3, (k, p))
        expected = _whole_grid_terms(time_, event_, x_, mask_, beta)
        got = cox._efron_terms(time_, event_, x_, mask_, beta, event_means=True)
        for name, a, b in zip(["loglik", "score", "information", "event means"], got, expected):
            np.testing.assert_array_equal(a, b, err_msg=name)
