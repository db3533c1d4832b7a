"""The batched Schoenfeld test of proportional hazards (cox.schoenfeld_test) against lifelines' own."""

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.statistics import proportional_hazard_test

from ferrostem import survival as sv
from ferrostem.cox import CoxBatch, cox_fit, schoenfeld_test


def tied_cohort(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    time = np.round(rng.exponential(np.exp(-0.5 * x[:, 0])) * 30) + 1  # many tied event times
    event = (rng.uniform(size=n) < 0.7).astype(int)
    return pd.DataFrame({"time": time, "event": event, "a": x[:, 0], "b": x[:, 1], "c": (x[:, 2] > 0) * 1.0})


def lifelines_test(frame: pd.DataFrame) -> tuple[CoxPHFitter, pd.DataFrame]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CoxPHFitter().fit(frame, duration_col="time", event_col="event")
        summary = proportional_hazard_test(model, frame, time_transform="km").summary
    return model, summary.set_axis([i if isinstance(i, str) else i[0] for i in summary.index])


@pytest.mark.parametrize("seed,n", [(1, 40), (2, 120), (3, 300)])
def test_schoenfeld_test_gives_lifelines_numbers(seed, n):
    frame = tied_cohort(seed, n)
    model, expected = lifelines_test(frame)
    time, event, x = frame["time"].to_numpy(), frame["event"].to_numpy(), frame[["a", "b", "c"]].to_numpy()[None]
    # at lifelines' own coefficients the statistic is lifelines' to rounding
    fit = cox_fit(time, event, x)
    at_lifelines = CoxBatch(
        coef=model.params_.to_numpy()[None],
        cov=model.variance_matrix_.to_numpy()[None],
        loglik=fit.loglik,
        loglik_null=fit.loglik_null,
        n=fit.n,
        events=fit.events,
        converged=fit.converged,
    )
    statistic, p = schoenfeld_test(time, event, x, at_lifelines)
    np.testing.assert_allclose(statistic[0], expected["test_statistic"].to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(p[0], expected["p"].to_numpy(), rtol=1e-10)
    # with the own fit (tighter convergence than lifelines') to lifelines' tolerance
    result = sv.ph_check(frame)
    np.testing.assert_allclose(result["p"].to_numpy(), expected.loc[result.index, "p"].to_numpy(), rtol=1e-3)
    assert list(result.index) == ["a", "b", "c"]


def test_batched_models_with_missing_rows_equal_separate_fits():
    frame = tied_cohort(4, 150)
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((4, len(frame)))
    scores[1, rng.choice(len(frame), 20, replace=False)] = np.nan  # model 1 uses 130 samples
    x = np.empty((4, len(frame), 3))
    x[:, :, 0] = scores
    x[:, :, 1:] = frame[["b", "c"]].to_numpy()[None]
    batched = sv.ph_checks(frame["time"].to_numpy(), frame["event"].to_numpy(), x, ["score", "b", "c"])
    for i in range(4):
        alone = (
            frame[["time", "event", "b", "c"]].assign(score=scores[i]).dropna()[["time", "event", "score", "b", "c"]]
        )
        _, expected = lifelines_test(alone)
        np.testing.assert_allclose(
            batched[i]["p"].to_numpy(), expected.loc[batched[i].index, "p"].to_numpy(), rtol=1e-3
        )
        pd.testing.assert_frame_equal(batched[i], sv.ph_check(alone), rtol=1e-9)
