"""Clinical models (nomogram, calibration, decision curves) against R rms (tests/data/clinical_models/, R script
beside it) and a hand-checked decision curve; bad inputs give clear messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ferrostem import clinical_models as cm
from ferrostem.errors import CohortError, ConfigError

DATA = Path(__file__).parent / "data" / "clinical_models"
PREDICTORS = ["risk", "stage", "age"]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(DATA / "data.tsv", sep="\t")


@pytest.fixture(scope="module")
def model(data) -> cm.ClinicalCox:
    return cm.fit_clinical_cox(data, PREDICTORS)


def test_cox_coefficients_match_rms_cph(model):
    reference = pd.read_csv(DATA / "coefficients.tsv", sep="\t")
    np.testing.assert_allclose(model.coef, reference["coef"], rtol=1e-6)
    np.testing.assert_allclose(model.se, reference["se"], rtol=1e-5)


def test_nomogram_axes_and_points_match_rms(data, model):
    """Default axes (values of stage, pretty() ticks of risk and age) and their points, as rms::nomogram."""
    table = cm.build_nomogram(model, data).points_table()
    reference = pd.read_csv(DATA / "nomogram_points.tsv", sep="\t")
    assert table["predictor"].tolist() == reference["predictor"].tolist()
    np.testing.assert_allclose(table["value"], reference["value"])
    np.testing.assert_allclose(table["points"], reference["points"], atol=1e-6)
    assert table.groupby("predictor")["points"].max().max() == pytest.approx(100)


def test_total_points_give_the_linear_predictor_and_survival_of_rms(data, model):
    """rms's lp axis (centred linear predictor) and 1/3/5-year survival axes, at their total-point positions."""
    nomogram = cm.build_nomogram(model, data)
    axes = pd.read_csv(DATA / "nomogram_functions.tsv", sep="\t")
    lp = axes[axes["axis"] == "lp"]
    np.testing.assert_allclose(nomogram.linear_predictor(lp["points"]) - model.center, lp["value"], atol=1e-7)
    for horizon in (1, 3, 5):
        rows = axes[axes["axis"] == f"{horizon}-year survival"]
        assert len(rows) >= 5
        np.testing.assert_allclose(nomogram.survival(horizon, rows["points"].to_numpy()), rows["value"], atol=1e-5)


def test_r_pretty_matches_r():
    # R 4.2: pretty(c(-2.31, 2.87), 10); pretty(c(31, 84), 10); pretty(c(0, 168.2), 10); pretty(c(0.013, 0.087))
    np.testing.assert_allclose(cm.r_pretty(-2.31, 2.87, 10), np.arange(-2.5, 3.01, 0.5))
    np.testing.assert_allclose(cm.r_pretty(31, 84, 10), np.arange(30, 86, 5))
    np.testing.assert_allclose(cm.r_pretty(0, 168.2, 10), np.arange(0, 181, 20))
    np.testing.assert_allclose(cm.r_pretty(0.013, 0.087), [0, 0.02, 0.04, 0.06, 0.08, 0.1], atol=1e-15)


@pytest.fixture(scope="module")
def r_calibration() -> pd.DataFrame:
    return pd.read_csv(DATA / "calibration.tsv", sep="\t")


@pytest.mark.parametrize("horizon", [1, 3, 5])
def test_calibration_on_rs_resamples_matches_rms_calibrate(data, model, r_calibration, horizon):
    """Apparent part exact; the bootstrap part on the resamples R drew (bootstrap_indices.tsv) equal too."""
    indices = pd.read_csv(DATA / "bootstrap_indices.tsv", sep="\t", header=None).to_numpy() - 1
    ours = cm.bootstrap_calibration(data, model, [horizon], group_size=50, bootstrap_indices=indices)
    ref = r_calibration[r_calibration["horizon"] == horizon]
    assert len(ours) == len(ref) == 3
    for mine, theirs in [("index_orig", "index.orig"), ("mean_predicted", "mean.predicted"), ("km", "KM")]:
        np.testing.assert_allclose(ours[mine], ref[theirs], atol=1e-9, err_msg=mine)
    for mine, theirs in [
        ("training", "training"),
        ("test", "test"),
        ("mean_optimism", "mean.optimism"),
        ("km_corrected", "KM.corrected"),
    ]:
        np.testing.assert_allclose(ours[mine], ref[theirs], atol=1e-6, err_msg=mine)
    assert ours["n"].tolist() == ref["n"].tolist()


def test_seeded_bootstrap_calibration_is_close_to_rms_and_reproducible(data, model, r_calibration):
    """Our own resamples (seeded): the same corrected calibration within 0.03 of R's (B = 40 there, 200 here)."""
    first = cm.bootstrap_calibration(data, model, [3], bootstrap=200, seed=3)
    again = cm.bootstrap_calibration(data, model, [3], bootstrap=200, seed=3)
    pd.testing.assert_frame_equal(first, again)
    ref = r_calibration[r_calibration["horizon"] == 3]
    np.testing.assert_allclose(first["km_corrected"], ref["KM.corrected"], atol=0.03)


def test_decision_curve_matches_hand_computation():
    # KM at 2 years: everyone 1 - 1/6 then x 4/5 -> 2/3 (risk 1/3); risk >= 0.5 (first three): 1/2 x 2/3 survive
    # -> risk 2/3 among half; risk >= 0.25 (first four): 3/4 x 2/3 = 1/2 -> risk 1/2 among 4/6
    time = [0.5, 1.0, 1.5, 2.5, 3.0, 4.0]
    event = [1, 1, 0, 1, 0, 0]
    risk = [0.9, 0.7, 0.6, 0.4, 0.2, 0.1]
    curve = cm.decision_curve(time, event, risk, 2.0, [0.25, 0.5, 0.95]).set_index("threshold")
    assert curve.loc[0.5, "model"] == pytest.approx(1 / 2 * 2 / 3 - 1 / 2 * 1 / 3 * 1.0)
    assert curve.loc[0.25, "model"] == pytest.approx(4 / 6 * 1 / 2 - 4 / 6 * 1 / 2 * (1 / 3))
    assert curve.loc[0.95, "model"] == 0.0
    assert curve.loc[0.25, "treat_all"] == pytest.approx(1 / 3 - 2 / 3 * 1 / 3)
    assert curve.loc[0.5, "treat_all"] == pytest.approx(1 / 3 - 2 / 3)
    assert (curve["treat_none"] == 0).all()


def test_decision_curve_rejects_a_threshold_outside_0_1():
    with pytest.raises(ConfigError, match="threshold 1 is not strictly between 0 and 1"):
        cm.decision_curve([1.0, 2.0], [1, 0], [0.2, 0.4], 1.5, [1.0])


def _obs(data: pd.DataFrame, **drop) -> pd.DataFrame:
    obs = pd.DataFrame(
        {
            "OS": data["event"].to_numpy(),
            "OS.time": data["time"].to_numpy() * 365.25,
            "stage": ["Stage " + ("IV" if s == 4 else "I" * s) for s in data["stage"]],
            "age": data["age"].to_numpy(),
        },
        index=[f"p{i}" for i in range(len(data))],
    )
    return obs.drop(columns=[c for c, gone in drop.items() if gone])


def test_cohort_model_reproduces_the_fixture_fit_from_the_sample_table(data, model):
    obs = _obs(data)
    score = pd.Series(data["risk"].to_numpy(), index=obs.index, name="risk")
    result = cm.clinical_model(obs, score, cm.ClinicalSettings.from_config({"bootstrap": 5}))
    np.testing.assert_allclose(result.model.coef, model.coef, rtol=1e-6)
    assert result.horizons == [1.0, 3.0, 5.0]
    assert set(result.calibration["horizon"]) == {1.0, 3.0, 5.0}


def test_missing_covariate_is_named_and_the_model_fitted_without_it(data):
    obs = _obs(data, stage=True)
    score = pd.Series(data["risk"].to_numpy(), index=obs.index, name="risk")
    result = cm.clinical_model(obs, score, cm.ClinicalSettings.from_config({"bootstrap": 5}))
    assert result.model.predictors == ["risk", "age"]
    assert any("'stage'" in n and "fitted without it" in n for n in result.notes)


def test_too_few_events_is_a_clear_error(data):
    few = data.copy()
    few["event"] = 0
    few.loc[few.index[:4], "event"] = 1
    with pytest.raises(CohortError, match=r"4 events among 150 patients, too few for 3 predictors"):
        cm.fit_clinical_cox(few, PREDICTORS, min_events_per_variable=5)


def test_horizon_beyond_follow_up_is_noted_not_evaluated(data):
    obs = _obs(data)
    score = pd.Series(data["risk"].to_numpy(), index=obs.index, name="risk")
    result = cm.clinical_model(obs, score, cm.ClinicalSettings.from_config({"horizons": [1, 30], "bootstrap": 5}))
    assert result.horizons == [1.0]
    assert any("horizon 30 years" in n for n in result.notes)


def test_one_fit_per_resample_serves_every_horizon_as_separate_calls_do(data, model):
    indices = pd.read_csv(DATA / "bootstrap_indices.tsv", sep="\t", header=None).to_numpy()[:10] - 1
    together = cm.bootstrap_calibration(data, model, [1, 3], bootstrap_indices=indices)
    apart = pd.concat(
        [cm.bootstrap_calibration(data, model, [h], bootstrap_indices=indices) for h in (1, 3)], ignore_index=True
    )
    pd.testing.assert_frame_equal(together, apart)


def test_decision_curve_matches_dcurves_where_dcurves_is_defined(data, model):
    """dcurves 1.1.7 (make_dcurves_reference.py) on the fixture's 3-year risks: equal net benefit; dcurves gives
    none where the treated patients' follow-up all ends before the horizon, where we carry their KM forward."""
    given = pd.read_csv(DATA / "dcurves_input.tsv", sep="\t")
    risk = 1 - model.survival(3.0, model.linear_predictor(data))
    np.testing.assert_allclose(given["risk"], risk, atol=1e-11)
    reference = pd.read_csv(DATA / "dcurves_reference.tsv", sep="\t")
    wide = reference.pivot(index="threshold", columns="model", values="net_benefit")
    ours = cm.decision_curve(given["time"], given["event"], given["risk"], 3.0, wide.index).set_index("threshold")
    defined = wide["risk"].notna()
    assert defined.sum() > 50
    np.testing.assert_allclose(ours.loc[defined, "model"], wide.loc[defined, "risk"], atol=1e-12)
    np.testing.assert_allclose(ours["treat_all"], wide["all"], atol=1e-12)
    np.testing.assert_allclose(ours["treat_none"], wide["none"], atol=0)
    for threshold in wide.index[~defined]:
        treated = given["risk"] >= threshold
        assert treated.any() and given.loc[treated, "time"].max() < 3.0


def _adata(data: pd.DataFrame, **drop):
    import anndata as ad

    obs = _obs(data, **drop).assign(tissue="tumor", patient_id=lambda o: o.index)
    rng = np.random.default_rng(0)
    genes = ["GPX4", "SLC7A11"]
    counts = pd.DataFrame(rng.poisson(50, size=(len(obs), 2)), index=obs.index, columns=genes)
    return ad.AnnData(X=np.log2(counts.to_numpy() + 1.0), obs=obs, var=pd.DataFrame(index=genes))


def test_cohort_models_take_the_risk_scores_and_render_their_section(data):
    from ferrostem.clinical_models_report import cohort_clinical_models
    from ferrostem.report import render_report

    adata = _adata(data)
    scores = pd.DataFrame(
        {"risk": data["risk"].to_numpy(), "ferroptosis_set": data["age"].to_numpy() * 1.0}, index=adata.obs_names
    )
    info = pd.DataFrame({"category": ["risk score", "ferroptosis"]}, index=["risk", "ferroptosis_set"])
    block = {"bootstrap": 5, "horizons": [1, 3]}
    result = cohort_clinical_models(adata, scores, info, block, models=[], cohort="x", label="fixture")
    assert [m.score for m in result.models] == ["risk"]  # the gene-set score is not a risk score
    assert set(result.tables["terms"]["term"]) == {"risk", "stage", "age"}
    assert set(result.tables["calibration"]["horizon"]) == {1.0, 3.0}
    page = render_report([result.section], cohort="fixture", title="t", simulated=True)
    assert page.count("<img") == 3
    for text in ["nomogram", "Calibration", "Decision curves", "risk + stage, age (OS)"]:
        assert text in page


def test_cohort_without_stage_or_a_risk_score_says_so(data):
    from ferrostem.clinical_models_report import cohort_clinical_models

    adata = _adata(data, stage=True)
    scores = pd.DataFrame({"risk": data["risk"].to_numpy()}, index=adata.obs_names)
    info = pd.DataFrame({"category": ["risk score"]}, index=["risk"])
    result = cohort_clinical_models(adata, scores, info, {"bootstrap": 2}, models=[], cohort="x", label="x")
    assert result.models[0].model.predictors == ["risk", "age"]
    assert any("'stage'" in w for w in result.section.warnings)
    none = cohort_clinical_models(
        adata, scores, info.assign(category="ferroptosis"), {"bootstrap": 2}, models=[], cohort="x", label="x"
    )
    assert none.models == [] and any("no risk score" in w for w in none.section.warnings)
    missing = cohort_clinical_models(adata, scores, info, {"scores": ["nope"]}, models=[], cohort="x", label="x")
    assert any("'nope' is not a score of this cohort" in w for w in missing.section.warnings)


def test_lasso_entry_is_applied_and_labelled_by_its_role(data):
    from ferrostem.clinical_models_report import cohort_clinical_models

    adata = _adata(data)
    entry = {
        "id": "lasso_cox_train_os",
        "genes": ["GPX4", "SLC7A11", "TFRC"],
        "method": "weighted_sum",
        "weights": {"GPX4": 0.5, "SLC7A11": -0.3, "TFRC": 0.2},
        "training_cohort": "train",
    }
    empty = pd.DataFrame(index=adata.obs_names)
    info = pd.DataFrame({"category": []}, index=pd.Index([], name="score"))
    validation = cohort_clinical_models(
        adata, empty, info, {"bootstrap": 2}, models=[entry], cohort="valid", label="valid"
    )
    assert [m.score for m in validation.models] == ["lasso_cox_train_os"]
    assert "weights applied unchanged (validation)" in validation.models[0].notes[0]
    assert any("TFRC not measured here (20% of the total |weight| missing)" in w for w in validation.section.warnings)
    training = cohort_clinical_models(
        adata, empty, info, {"bootstrap": 2}, models=[entry], cohort="train", label="train"
    )
    assert "training cohort (in-sample, optimistic)" in training.models[0].notes[0]
