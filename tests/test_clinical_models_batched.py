"""The bootstrap refits of rms::calibrate in one batch (clinical_models.bootstrap_cox_fits) give each resample's own
fit; the calibration against R's resamples is checked in test_clinical_models.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ferrostem import clinical_models as cm
from ferrostem.cox import cox_fit

DATA = Path(__file__).parent / "data" / "clinical_models"
PREDICTORS = ["risk", "stage", "age"]


def test_batched_bootstrap_fits_equal_fits_of_each_resample():
    data = pd.read_csv(DATA / "data.tsv", sep="\t")
    time, event = data["time"].to_numpy(dtype=float), data["event"].to_numpy(dtype=int)
    x = data[PREDICTORS].to_numpy(dtype=float)
    resamples = np.random.default_rng(7).integers(0, len(data), size=(25, len(data)))
    batched = cm.bootstrap_cox_fits(time, event, x, resamples)
    for b, rows in enumerate(resamples):
        alone = cox_fit(time[rows], event[rows], x[rows][None])
        np.testing.assert_allclose(batched.coef[b], alone.coef[0], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(batched.cov[b], alone.cov[0], rtol=1e-6)
        np.testing.assert_allclose(batched.loglik[b], alone.loglik[0], rtol=1e-10)
        assert batched.n[b] == len(rows) and batched.events[b] == event[rows].sum()
    model = cm.fit_clinical_cox(data, PREDICTORS)
    refit = cm._clinical_cox(PREDICTORS, time[resamples[3]], event[resamples[3]], x[resamples[3]], batched, 3)
    expected = cm.fit_clinical_cox(data.iloc[resamples[3]], PREDICTORS)
    np.testing.assert_allclose(refit.baseline_hazard, expected.baseline_hazard, rtol=1e-7)
    assert refit.center != model.center


def _grouped_km_reference(predicted, time, event, horizon, cuts):
    """rms::groupkm group by group with `km_at` (the loop `grouped_km_batch` replaces)."""
    predicted = np.where(np.abs(predicted) < 1e-10, 0.0, predicted)
    group = np.clip(np.searchsorted(cuts, predicted, side="right") - 1, 0, len(cuts) - 2)
    count = len(cuts) - 1
    mean, km, patients = np.full(count, np.nan), np.full(count, np.nan), np.zeros(count, dtype=int)
    for g in range(count):
        members = group == g
        if members.any():
            mean[g] = predicted[members].mean()
        if members.sum() >= 2:
            patients[g] = members.sum()
            km[g] = cm.km_at(time[members], event[members], horizon)
    return mean, km, patients


def _random_cohort(rng, n):
    time = np.round(rng.exponential(3, n), int(rng.integers(0, 3))) + 0.01  # rounded: tied times
    event = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(int)
    return time, event


def test_grouped_km_batch_equals_km_at_of_each_group_to_the_last_bit():
    rng = np.random.default_rng(11)
    for _ in range(60):
        n, sets = int(rng.integers(5, 300)), int(rng.integers(1, 6))
        time, event = _random_cohort(rng, n)
        rows = rng.integers(0, n, size=(sets, n))  # bootstrap resamples: replicated patients
        predicted = rng.random((sets, n)) ** rng.uniform(0.2, 3)
        predicted[:, :3] = 0.0
        cuts = cm.calibration_cuts(predicted[0], int(rng.integers(3, 80)))
        for horizon in [0.5, 3.0, float(np.median(time)), float(time.max()), 50.0]:
            batch = cm.grouped_km_batch(predicted, time[rows], event[rows], horizon, cuts)
            for b in range(sets):
                mean, km, patients = _grouped_km_reference(predicted[b], time[rows[b]], event[rows[b]], horizon, cuts)
                np.testing.assert_array_equal(batch.mean_predicted[b], mean)
                np.testing.assert_array_equal(batch.km[b], km)
                np.testing.assert_array_equal(batch.patients[b], patients)
            shared = cm.grouped_km_batch(predicted, time, event, horizon, cuts)  # one cohort for every set
            mean, km, _ = _grouped_km_reference(predicted[-1], time, event, horizon, cuts)
            np.testing.assert_array_equal(shared.km[-1], km)
            np.testing.assert_array_equal(shared.mean_predicted[-1], mean)


def test_efron_increments_equal_the_sum_at_each_event_time_to_the_last_bit():
    rng = np.random.default_rng(12)
    large_ties = False  # a time with more tied deaths than numpy sums one after the other
    for _ in range(40):
        n = int(rng.integers(5, 400))
        time, event = _random_cohort(rng, n)
        if not event.any():
            continue
        rows = rng.integers(0, n, n)  # replicated rows: ties of many deaths (more than 8 too)
        time, event = time[rows], event[rows]
        lp = rng.normal(0, 1, n)
        order = np.argsort(time, kind="stable")
        times, hazard = cm.efron_baseline_hazard(time, event, lp)
        t, e, risk = time[order], event[order], np.exp(lp[order])
        expected = []
        for u in times:
            at_risk, dead = risk[t >= u].sum(), (t == u) & (e == 1)
            d, tied = int(dead.sum()), risk[dead].sum()
            expected.append(np.sum(1.0 / (at_risk - np.arange(d) / d * tied)))
        # the risk-set sums are running sums in the function: equal to ~1e-13, not bit for bit, to these
        np.testing.assert_allclose(hazard, np.cumsum(expected), rtol=1e-12)
        tail = np.concatenate([np.cumsum(risk[::-1])[::-1], [0.0]])
        first, last = np.searchsorted(t, times, side="left"), np.searchsorted(t, times, side="right")
        dead_risk = np.concatenate([[0.0], np.cumsum(risk * e)])
        dead_count = np.concatenate([[0], np.cumsum(e)])
        r, tied, d = tail[first], dead_risk[last] - dead_risk[first], dead_count[last] - dead_count[first]
        large_ties |= bool(d.max() >= cm.SEQUENTIAL_SUM)
        per_time = np.array([np.sum(1.0 / (ri - np.arange(di) / di * ti)) for ri, ti, di in zip(r, tied, d)])
        np.testing.assert_array_equal(cm._efron_increments(r, tied, d), per_time)
    assert large_ties


def test_bootstrap_calibration_equals_the_resample_by_resample_loop_to_the_last_bit():
    data = pd.read_csv(DATA / "data.tsv", sep="\t")
    model = cm.fit_clinical_cox(data, PREDICTORS)
    horizons = [1.0, 2.0]
    resamples = np.random.default_rng(3).integers(0, len(data), size=(40, len(data)))
    table = cm.bootstrap_calibration(data, model, horizons, group_size=20, bootstrap_indices=resamples)
    time, event = data["time"].to_numpy(dtype=float), data["event"].to_numpy(dtype=int)
    x = data[PREDICTORS].to_numpy(dtype=float)
    fits = cm.bootstrap_cox_fits(time, event, x, resamples)
    for horizon in horizons:
        rows_h = table[table["horizon"] == horizon]
        predicted = cm._baseline_at(model, horizon, time.max()) ** np.exp(x @ model.coef - model.center)
        cuts = cm.calibration_cuts(predicted, 20)
        sums = np.zeros((3, len(cuts) - 1))
        for b, rows in enumerate(resamples):
            refit = cm._clinical_cox(PREDICTORS, time[rows], event[rows], x[rows], fits, b)
            assert refit is not None
            lp = x @ refit.coef
            base = cm._baseline_at(refit, horizon, time[rows].max())
            train = _grouped_km_reference(
                base ** np.exp(lp[rows] - refit.center), time[rows], event[rows], horizon, cuts
            )
            test = _grouped_km_reference(base ** np.exp(lp - refit.center), time, event, horizon, cuts)
            train, test = train[1] - train[0], test[1] - test[0]
            usable = np.isfinite(train + test)
            sums += [np.where(usable, train, 0.0), np.where(usable, test, 0.0), usable]
        np.testing.assert_array_equal(rows_h["training"].to_numpy(), sums[0] / sums[2])
        np.testing.assert_array_equal(rows_h["test"].to_numpy(), sums[1] / sums[2])
        np.testing.assert_array_equal(rows_h["n"].to_numpy(), sums[2].astype(int))
