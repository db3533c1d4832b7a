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
