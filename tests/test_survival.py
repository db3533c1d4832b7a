"""Survival statistics against R (survival, maxstat, metafor) and against the demo's planted hazard ratio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ferrostem import cox
from ferrostem import survival as sv
from ferrostem.errors import CohortError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def fixture_data() -> pd.DataFrame:
    return pd.read_csv(DATA / "survival_fixture_data.tsv", sep="\t", index_col="sample_id")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(DATA / "survival_fixture_reference.tsv", sep="\t").set_index(["analysis", "term", "quantity"])


def ref(reference: pd.DataFrame, analysis: str, term: str, quantity: str) -> float:
    return float(reference.loc[(analysis, term, quantity), "value"])


@pytest.mark.parametrize("score", ["x1", "x2", "x3"])
def test_univariate_cox_matches_r_coxph(fixture_data, reference, score):
    data = fixture_data[fixture_data[score].notna()]
    table = cox.cox_univariate(data["time"].to_numpy(), data["status"].to_numpy(), sv.standardise(data[[score]]))
    row = table.loc[score]
    for quantity in ["hr", "hr_lower", "hr_upper", "se", "p_wald", "p_lr"]:
        assert row[quantity] == pytest.approx(ref(reference, "cox_univariate", score, quantity), rel=0.01), quantity
    assert row["n"] == ref(reference, "cox_univariate", score, "n")
    assert row["events"] == ref(reference, "cox_univariate", score, "events")


def test_batched_cox_with_missing_values_matches_single_fits(fixture_data, reference):
    table = cox.cox_univariate(
        fixture_data["time"].to_numpy(),
        fixture_data["status"].to_numpy(),
        pd.concat([sv.standardise(fixture_data[[c]]) for c in ["x1", "x2", "x3"]], axis=1),
    )
    for score in ["x1", "x2", "x3"]:
        assert table.at[score, "coef"] == pytest.approx(ref(reference, "cox_univariate", score, "coef"), rel=0.01)


def test_multivariable_cox_matches_r(fixture_data, reference):
    covariates, notes = sv.covariate_frame(fixture_data, ["age", "stage", "sex"])
    assert notes == []
    _, terms = cox.cox_multivariable(
        fixture_data["time"].to_numpy(),
        fixture_data["status"].to_numpy(),
        sv.standardise(fixture_data[["x1"]]),
        covariates,
    )
    table = terms["x1"].set_index("term").rename(index={"score": "z1"})
    for term in ["z1", "age", "stage", "male"]:
        for quantity in ["coef", "se", "hr_lower", "hr_upper"]:
            assert table.at[term, quantity] == pytest.approx(
                ref(reference, "cox_multivariable", term, quantity), rel=0.01
            ), (term, quantity)


@pytest.mark.parametrize("score", ["x1", "x2", "x3"])
def test_logrank_matches_r_survdiff(fixture_data, reference, score):
    data = fixture_data[fixture_data[score].notna()]
    time, event = data["time"].to_numpy(), data["status"].to_numpy()
    median = sv.logrank_test(time, event, np.where(data[score] > data[score].median(), "high", "low"))
    assert median.chisq == pytest.approx(ref(reference, "logrank_median", score, "chisq"), rel=0.01)
    assert median.p == pytest.approx(ref(reference, "logrank_median", score, "p"), rel=0.01)
    tertiles = sv.logrank_test(time, event, sv.tertile_groups(data[score]).to_numpy())
    assert tertiles.df == 2
    assert tertiles.chisq == pytest.approx(ref(reference, "logrank_tertiles", score, "chisq"), rel=0.01)


@pytest.mark.parametrize("score", ["x1", "x2", "x3"])
def test_cutpoint_matches_r_maxstat(fixture_data, reference, score):
    data = fixture_data[fixture_data[score].notna()]
    cut = sv.maxstat_cutpoint(data["time"].to_numpy(), data["status"].to_numpy(), data[score].to_numpy())
    assert cut.statistic == pytest.approx(ref(reference, "maxstat", score, "statistic"), rel=0.01)
    assert cut.p_corrected == pytest.approx(ref(reference, "maxstat", score, "p_lausen92"), rel=0.01)
    assert cut.cutpoint == pytest.approx(ref(reference, "maxstat", score, "cutpoint"), rel=1e-6)
    assert cut.p_uncorrected < cut.p_corrected
    # the uncorrected p belongs to the same maximally selected statistic
    assert cut.p_uncorrected == pytest.approx(
        2 * stats.norm.sf(ref(reference, "maxstat", score, "statistic")), rel=0.02
    )


@pytest.mark.parametrize("score", ["x1", "x2"])
def test_harrell_c_matches_r_concordance(fixture_data, reference, score):
    # R reports the concordance of the fitted linear predictor; both coefficients here are positive
    c = sv.harrell_c(fixture_data["time"].to_numpy(), fixture_data["status"].to_numpy(), fixture_data[score].to_numpy())
    assert c == pytest.approx(ref(reference, "cox_univariate", score, "concordance"), abs=0.005)


@pytest.mark.parametrize("studies", ["moderate", "concordant2", "concordant3", "discordant"])
def test_random_effects_meta_matches_metafor_dl(reference, studies):
    # concordant sets have Q < k - 1: tau^2 must be truncated at 0 (statsmodels' combine_effects leaves it
    # negative and pooled log(1.46) and log(1.47) to log(1.06) with no SE)
    inputs = reference.loc[f"meta_input_{studies}"]
    names = sorted({term for term, _ in inputs.index})
    log_hr = np.array([ref(reference, f"meta_input_{studies}", s, "log_hr") for s in names])
    se = np.array([ref(reference, f"meta_input_{studies}", s, "se") for s in names])
    meta = sv.random_effects_meta(log_hr, se)
    expected = lambda quantity: ref(reference, f"meta_dl_{studies}", "pooled", quantity)  # noqa: E731
    for quantity, value in [
        ("log_hr", meta.log_hr),
        ("se", meta.se),
        ("tau2", meta.tau2),
        ("i2", meta.i2),
        ("p", meta.p),
        ("q", meta.q),
        ("ci_lower", np.log(meta.hr_lower)),
        ("ci_upper", np.log(meta.hr_upper)),
    ]:
        assert value == pytest.approx(expected(quantity), rel=1e-6, abs=1e-9), quantity
    assert meta.k == len(names)
    assert log_hr.min() - 1e-12 <= meta.log_hr <= log_hr.max() + 1e-12


def test_cross_cohort_table_pools_two_concordant_cohorts_between_them():
    from ferrostem.survival_stage import cross_cohort_tables

    tables = {
        cohort: pd.DataFrame(
            {"endpoint": ["OS"], "score": ["FTH1"], "coef": [np.log(hr)], "se": [se], "hr": [hr], "p_wald": [0.001]}
        )
        for cohort, hr, se in [("a", 1.46, 0.10), ("b", 1.47, 0.12)]
    }
    row = cross_cohort_tables(tables).iloc[0]
    assert 1.46 <= row["meta_hr"] <= 1.47 and row["tau2"] == 0
    assert row["meta_hr_lower"] < 1.46 and row["meta_hr_upper"] > 1.47 and 0 < row["meta_p"] < 1e-5


def test_ph_check_agrees_with_r_and_flags_a_planted_violation(fixture_data, reference):
    covariates, _ = sv.covariate_frame(fixture_data, ["age", "stage", "sex"])
    frame = pd.concat(
        [
            fixture_data[["time"]],
            fixture_data["status"].rename("event"),
            sv.standardise(fixture_data[["x1"]]),
            covariates,
        ],
        axis=1,
    )
    result = sv.ph_check(frame)
    # R's cox.zph (survival >= 3) uses an exact score test, lifelines the Grambsch-Therneau approximation:
    # the p-values differ (0.41 vs 0.44 for x1, 0.58 vs 0.40 for stage), the verdict must not
    for term in ["x1", "age", "stage", "male"]:
        r_term = "z1" if term == "x1" else term
        assert (result.at[term, "p"] < 0.05) == (ref(reference, "cox_zph_km", r_term, "p") < 0.05)
    # crossing hazards: x doubles early hazard and halves late hazard
    rng = np.random.default_rng(3)
    n = 400
    x = rng.standard_normal(n)
    early = rng.exponential(1 / (0.004 * np.exp(1.0 * x)))
    late = 300 + rng.exponential(1 / (0.004 * np.exp(-1.0 * x)))
    time = np.where(early < 300, early, late)
    censor = rng.uniform(100, 1500, n)
    frame = pd.DataFrame({"time": np.minimum(time, censor), "event": (time <= censor).astype(int), "x": x})
    assert sv.ph_check(frame).at["x", "p"] < 0.01


def test_cutpoint_correction_keeps_type_one_error_near_nominal():
    rng = np.random.default_rng(20261122)
    reps, n = 300, 80
    corrected, uncorrected = [], []
    for _ in range(reps):
        time = rng.exponential(1000, n)
        censor = rng.uniform(200, 3000, n)
        x = rng.standard_normal(n)  # unrelated to survival
        cut = sv.maxstat_cutpoint(np.minimum(time, censor), (time <= censor).astype(int), x)
        corrected.append(cut.p_corrected)
        uncorrected.append(cut.p_uncorrected)
    rate = np.mean(np.array(corrected) < 0.05)
    # Lausen-Schumacher is conservative; with 300 replicates 0.09 is ~3 binomial SDs above 0.05
    assert 0.005 <= rate <= 0.09
    # the uncorrected minimum p-value is far too liberal: the correction is doing real work
    assert np.mean(np.array(uncorrected) < 0.05) > 0.2


def test_permutation_cutpoint_p_holds_level():
    rng = np.random.default_rng(7)
    reps, n = 120, 60
    p = []
    for i in range(reps):
        time = rng.exponential(1000, n)
        censor = rng.uniform(200, 3000, n)
        cut = sv.maxstat_cutpoint(
            np.minimum(time, censor),
            (time <= censor).astype(int),
            rng.standard_normal(n),
            method="permutation",
            permutations=199,
            seed=i,
        )
        p.append(cut.p_corrected)
    assert 0.0 < np.mean(np.array(p) < 0.05) <= 0.11
    assert 0.35 < np.mean(np.array(p) < 0.5) < 0.65  # roughly uniform under the null


def _latent_scores(adata, latent_path: Path) -> pd.DataFrame:
    latent = pd.read_csv(latent_path, sep="\t", index_col="sample_id")
    tumours = adata.obs.index[adata.obs["tissue"] == "tumor"]
    return latent.loc[tumours, ["ferroptosis_resistance", "stemness", "cytotoxic", "stromal"]]


@pytest.mark.parametrize("cohort", ["rnaseq", "array"])
def test_planted_hazard_ratio_is_recovered(demo_dir, demo_rnaseq, demo_array, cohort):
    import json

    truth = json.loads((demo_dir / "truth" / "truth.json").read_text())["hazard_ratio_per_sd"]
    adata = demo_rnaseq if cohort == "rnaseq" else demo_array
    scores = _latent_scores(adata, demo_dir / "truth" / f"latent_{cohort}.tsv")
    result = sv.analyse_endpoint(
        adata.obs, scores, "OS", sv.SurvivalSettings.from_config({"covariates": ["stage", "age", "sex"]})
    )
    row = result.table.set_index("score").loc[truth["factor"]]
    # stage is in the planted hazard (independent of F): the stage-adjusted model is the planted one
    assert row["mv_hr_lower"] < truth["value"] < row["mv_hr_upper"]
    # the Cox HR is not collapsible: leaving stage out attenuates the marginal HR towards 1, so the
    # univariate model only has to find the effect in the planted direction
    assert 1 < row["hr"] < truth["value"] and row["p_wald"] < 0.05
    assert row["c_index"] > 0.55
    stage = result.multivariable_terms[truth["factor"]].set_index("term").loc["stage"]
    assert stage["hr_lower"] < np.exp(truth["stage_log_hazard"]) < stage["hr_upper"]
    cytotoxic = result.table.set_index("score").loc["cytotoxic"]
    assert cytotoxic["hr"] < 1  # planted correlation -0.6 with F
    aucs = [row[f"auc_{y:g}y"] for y in result.auc_years if np.isfinite(row[f"auc_{y:g}y"])]
    assert aucs and all(0.5 < auc < 1 for auc in aucs)  # an AUC past the end of follow-up is not estimable


def test_gene_mean_score_of_the_resistance_programme_is_prognostic(demo_dir, demo_rnaseq):
    from ferrostem.demo import FERROPTOSIS_RESISTANCE

    tumours = demo_rnaseq[demo_rnaseq.obs["tissue"] == "tumor"]
    genes = [g for g in FERROPTOSIS_RESISTANCE if g in tumours.var_names]
    score = pd.DataFrame(
        {"resistance_mean": np.asarray(tumours[:, genes].layers["log2"].mean(axis=1)).ravel()}, index=tumours.obs_names
    )
    row = sv.analyse_endpoint(tumours.obs, score, "OS").table.iloc[0]
    assert row["hr"] > 1.2 and row["p_wald"] < 0.05


def _toy_obs(n: int = 60, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    time = rng.exponential(800 / np.exp(0.5 * x))
    obs = pd.DataFrame(
        {
            "OS": (rng.uniform(size=n) < 0.7).astype(float),
            "OS.time": np.ceil(time),
            "age": rng.normal(60, 10, n),
            "stage": rng.choice(["Stage I", "Stage II", "Stage III"], n),
            "sex": rng.choice(["male", "female"], n),
        },
        index=[f"s{i}" for i in range(n)],
    )
    scores = pd.DataFrame({"signal": x, "noise": rng.standard_normal(n)}, index=obs.index)
    return obs, scores


def test_zero_and_missing_follow_up_are_left_out_with_a_warning():
    obs, scores = _toy_obs()
    obs.iloc[0, obs.columns.get_loc("OS.time")] = 0
    obs.iloc[1, obs.columns.get_loc("OS.time")] = np.nan
    obs.iloc[2, obs.columns.get_loc("OS")] = np.nan
    result = sv.analyse_endpoint(obs, scores, "OS")
    assert result.table["n"].max() == 57
    text = " ".join(result.warnings)
    assert "2 of 60 samples without follow-up" in text and "zero or negative follow-up" in text and "s0" in text
    # a missing status (e.g. no vital_status) is named with the endpoint it cannot be used for
    assert "(no usable OS endpoint) were left out (e.g. s1, s2)" in text


def test_constant_score_and_no_event_group_warn_without_crashing():
    obs, scores = _toy_obs()
    scores["constant"] = 3.0
    # every event in the low half of `split`: the high group has none
    split = obs["OS.time"].rank().to_numpy()
    scores["split"] = split
    obs.loc[scores["split"] > np.median(split), "OS"] = 0.0
    result = sv.analyse_endpoint(obs, scores, "OS")
    table = result.table.set_index("score")
    assert np.isnan(table.at["constant", "hr"]) and np.isnan(table.at["constant", "km_median_p"])
    assert table.at["split", "km_median_no_event_group"] == "high"
    text = " ".join(result.warnings)
    assert "constant" in text and "no events" in text


def test_too_few_events_for_multivariable_model_warns():
    obs, scores = _toy_obs(n=40)
    obs["OS"] = 0.0
    obs.iloc[:12, obs.columns.get_loc("OS")] = 1.0  # 12 events for 4 parameters (need 20)
    result = sv.analyse_endpoint(obs, scores, "OS")
    assert "too few events for a multivariable model" in " ".join(result.warnings)
    assert result.table["mv_hr"].isna().all() and result.table["hr"].notna().all()


def test_endpoint_without_events_is_skipped_and_bad_status_names_the_sample():
    obs, scores = _toy_obs()
    obs["OS"] = 0.0
    result = sv.analyse_endpoint(obs, scores, "OS")
    assert result.table.empty and "endpoint not analysed" in result.warnings[-1]
    obs.loc["s5", "OS"] = -5
    with pytest.raises(CohortError, match=r"sample 's5' has -5 \(1 samples with other values\)"):
        sv.analyse_endpoint(obs, scores, "OS")
    present, notes = sv.available_endpoints(obs, ["OS", "DSS"])
    assert present == ["OS"] and "DSS" in notes[0]


@pytest.mark.parametrize(
    "value,expected",
    [
        ("Stage IIIA", 3),
        ("Stage IV", 4),
        ("stage I", 1),
        ("II", 2),
        ("Stage X", np.nan),
        (None, np.nan),
        ("2", 2),
        ("not reported", np.nan),
    ],
)
def test_parse_stage(value, expected):
    result = sv.parse_stage(value)
    assert (np.isnan(result) and np.isnan(expected)) or result == expected


def test_reported_c_index_is_the_model_concordance_as_r_coxph(fixture_data, reference):
    # x4 is protective (R: HR 0.64 per SD): R's coxph concordance is 0.648, C of the score itself 0.352
    obs = fixture_data.rename(columns={"status": "OS", "time": "OS.time"})
    result = sv.analyse_endpoint(
        obs, fixture_data[["x1", "x2", "x4"]], "OS", sv.SurvivalSettings.from_config({"covariates": []})
    )
    table = result.table.set_index("score")
    for score in ["x1", "x2", "x4"]:
        assert table.at[score, "c_index"] == pytest.approx(
            ref(reference, "cox_univariate", score, "concordance"), abs=1e-6
        ), score
    assert table.at["x4", "hr"] < 1 and table.at["x4", "direction"] == "higher score, lower risk"
    assert table.at["x1", "direction"] == "higher score, higher risk"
    # the time-dependent AUC follows the same fitted direction
    assert all(table.at["x4", f"auc_{y:g}y"] > 0.5 for y in result.auc_years)


def test_zero_inflated_score_is_not_analysed_and_impossible_splits_are_notes():
    from ferrostem.report import render_report
    from ferrostem.survival_report import survival_section
    from ferrostem.survival_stage import CohortSurvival

    obs, scores = _toy_obs(n=60)
    # zero in 56 of 60 samples, the 4 others the earliest deaths: per SD it would be the "strongest" hit
    zero_gene = pd.Series(0.0, index=obs.index)
    earliest = obs[obs["OS"] == 1].sort_values("OS.time").index[:4]
    zero_gene[earliest] = [5.0, 6.0, 7.0, 8.0]
    scores["zero_gene"] = zero_gene
    # 27 of 60 tied at 0 (45%): analysed, its median split and cutpoint exist but its tertiles cannot be made
    tied = scores["signal"].rank().astype(float)
    tied[tied <= 27] = 0.0
    scores["tied"] = tied
    result = sv.analyse_endpoint(obs, scores, "OS", sv.SurvivalSettings.from_config({"covariates": ["age"]}))
    table = result.table.set_index("score")
    assert table.at["zero_gene", "not_analysed"] == "5 distinct values; 0 in 56 of 60 samples"
    assert table.loc["zero_gene", ["hr", "p_wald", "c_index", "km_median_p", "cutpoint", "mv_hr"]].isna().all()
    assert table.at["tied", "not_analysed"] == "" and np.isfinite(table.at["tied", "hr"])
    assert np.isnan(table.at["tied", "km_tertile_p"]) and np.isfinite(table.at["tied", "km_median_p"])
    text = " ".join(result.warnings)
    assert "too few distinct values" in text and "zero_gene (5 distinct values" in text
    assert "tertiles not possible for 1 score(s)" in text and "tied" in text

    info = pd.DataFrame({"category": ["ferroptosis"] * 4}, index=["signal", "noise", "zero_gene", "tied"])
    survival = CohortSurvival("toy", [result], result.table, pd.DataFrame(), scores, info, models=[], notes=[])
    section = survival_section("toy", survival, top=2, cutpoint_method="lausen92", forest_rows=5)
    assert not any("zero_gene" in line for line in section.summary)
    html = render_report([section], cohort="toy", title="toy", simulated=True)
    assert "Scores not analysed as continuous scores" in html and "no tertiles" in html


@pytest.mark.parametrize(
    "values,expected",
    [
        (np.arange(10.0), ""),
        (np.r_[np.zeros(6), np.arange(1.0, 11.0)], ""),  # 6 of 16 tied: still continuous
        (np.r_[np.zeros(9), np.arange(1.0, 9.0)], "9 distinct values; 0 in 9 of 17 samples"),
        (np.arange(9.0), "9 distinct values; 0 in 1 of 9 samples"),
    ],
)
def test_discreteness_rule(values, expected):
    assert sv.discreteness(pd.Series(values)) == expected


@pytest.mark.parametrize(
    "value,text",
    [
        (np.float64(-5.0), "-5"),
        (np.int64(3), "3"),
        (0.25, "0.25"),
        (np.float32(1.23456789e-7), "1.235e-07"),
        ("a", "a"),
    ],
)
def test_numbers_in_messages_are_plain(value, text):
    assert sv.number(value) == text


@pytest.mark.parametrize("n_tumours", [0, 3])
def test_tumour_correlations_with_fewer_than_five_tumours_say_so(n_tumours):
    import anndata as ad

    from ferrostem.genes_report import genes_section
    from ferrostem.survival_report import immune_survival_section
    from ferrostem.survival_stage import CohortSurvival

    rng = np.random.default_rng(n_tumours)
    ids = [f"S{i}" for i in range(20 + n_tumours)]
    obs = pd.DataFrame({"tissue": ["normal"] * 20 + ["tumor"] * n_tumours, "patient_id": ids}, index=ids)
    genes = ["GPX4", "PDCD1", "CD274"]
    adata = ad.AnnData(
        obs=obs, var=pd.DataFrame(index=genes), layers={"log2": rng.normal(5, 1, (len(ids), len(genes)))}
    )
    info = pd.DataFrame({"category": ["immune cell", "ferroptosis"]}, index=["tcells", "fer"])
    scores = pd.DataFrame(rng.standard_normal((len(ids), 2)), index=ids, columns=list(info.index))
    tumour_scores = scores.loc[obs.index[obs["tissue"] == "tumor"]]
    expected = f"not possible with {n_tumours} tumour sample{'s' if n_tumours != 1 else ''} (at least 5 needed)"

    survival = CohortSurvival("few", [], pd.DataFrame(), pd.DataFrame(), tumour_scores, info, models=[], notes=[])
    immune = immune_survival_section("few", survival)
    assert any(expected in w for w in immune.warnings) and immune.summary == []
    assert immune.context["correlation_table"] == ""

    section = genes_section(
        "few",
        adata,
        ["GPX4"],
        scores=scores,
        info=info,
        survival_tables=[],
        checkpoint_genes=["PDCD1", "CD274"],
        panels={},
    )
    assert any(expected in w for w in section.warnings)
    assert section.context["correlation_table"] == ""


def test_implausible_follow_up_is_flagged_for_the_declared_unit():
    rng = np.random.default_rng(5)
    obs = pd.DataFrame({"OS.time": rng.uniform(30, 1800, 80), "OS": (rng.uniform(size=80) < 0.4).astype(float)})
    assert sv.follow_up_warnings(obs, "months") == []  # follow-up of a few years
    months_as_days = obs.assign(**{"OS.time": obs["OS.time"] / (365.25 / 12)})
    (warning,) = sv.follow_up_warnings(months_as_days, "days")
    assert warning.startswith("OS: median follow-up is") and "declared time unit (days)" in warning
    assert "under 90 days" in warning and "geo.time_unit" in warning
    days_as_years = obs.assign(**{"OS.time": obs["OS.time"] * 365.25})
    (warning,) = sv.follow_up_warnings(days_as_years, "years")
    assert "over 50 years" in warning
    zero = obs.assign(**{"OS.time": 0.0})
    assert np.isnan(sv.median_follow_up_days(zero["OS.time"], zero["OS"]))
    assert np.isnan(sv.median_follow_up_days(zero["OS.time"], 1 - zero["OS"]))  # was inf (60% censored at 0)
    assert "median observed time is 0 days" in sv.follow_up_warnings(zero, "days")[0]


def test_cohort_report_warns_at_the_top_about_months_declared_as_days(demo_array):
    from ferrostem.report import render_report
    from ferrostem.cohort_report import cohort_section

    adata = demo_array.copy()
    adata.obs["OS.time"] = adata.obs["OS.time"] / (365.25 / 12)  # the series' months read as days
    section = cohort_section(adata, "demo", time_unit="days")
    assert any("under 90 days" in w for w in section.warnings)
    other = cohort_section(demo_array, "demo", time_unit="months")
    assert not any("follow-up" in w for w in other.warnings)
    html = render_report(
        [section, other.__class__(id="later", title="Later", template=other.template, order=50, context=other.context)],
        cohort="demo",
        title="demo",
        simulated=True,
    )
    # first in the main findings, and again at the head of the cohort section
    assert section.summary[0].startswith("Warning: OS: median follow-up is")
    assert (
        html.index("under 90 days")
        < html.index('id="cohort"')
        < html.rindex("under 90 days")
        < html.index('id="later"')
    )

    adata.obs["OS.time"] = 0.0
    section = cohort_section(adata, "demo", time_unit="days")
    assert "not estimable" in section.context["endpoints"] and "inf" not in section.context["endpoints"]


def test_a_risk_model_that_inverts_in_a_cohort_says_so(fixture_data):
    from ferrostem.risk_models import AppliedScore
    from ferrostem.survival_report import model_block

    obs = fixture_data.rename(columns={"status": "OS", "time": "OS.time"})
    result = sv.analyse_endpoint(
        obs,
        fixture_data[["x4"]].rename(columns={"x4": "risk"}),
        "OS",
        sv.SurvivalSettings.from_config({"covariates": []}),
    )
    entry = {"id": "risk", "weights": {"A": 1.0, "B": -0.5}, "training_cohort": "other", "genes": ["A", "B"]}
    block = model_block(entry, "fixture", result, cv=None, applied=AppliedScore(obs["x4"], ["A", "B"], [], 0.0))
    assert "C = 0.65 (inverted here: higher score, lower risk)" in block["summary"]
    assert "higher score, lower risk" in block["table"]


@pytest.mark.parametrize("n_tumours", [0, 3])
def test_cohort_summary_with_fewer_than_five_tumours_says_so(demo_array, n_tumours):
    from ferrostem.cohort_report import cohort_section

    tissue = demo_array.obs["tissue"].astype(str)
    keep = list(demo_array.obs_names[tissue == "normal"][:20]) + list(
        demo_array.obs_names[tissue == "tumor"][:n_tumours]
    )
    section = cohort_section(demo_array[keep].copy(), "few", time_unit="months")
    assert f"Kaplan-Meier overview of the tumours: not possible with {n_tumours} tumour sample" in " ".join(
        section.warnings
    )


def test_forest_rows_show_a_gene_once_with_its_kind():
    from ferrostem.survival_report import forest_table

    info = pd.DataFrame(
        {
            "category": ["ferroptosis", "gene of interest", "ferroptosis", "ferroptosis"],
            "method": ["gene_panel", "", "gene_panel", "ssgsea"],
        },
        index=["ferroptosis_core_regulators__GPX4", "gene__GPX4", "cml_frg5_zhong2024__HMOX1", "wp4313_ferroptosis"],
    )
    ranked = pd.DataFrame(
        {
            "score": [
                "ferroptosis_core_regulators__GPX4",
                "gene__GPX4",
                "wp4313_ferroptosis",
                "cml_frg5_zhong2024__HMOX1",
            ],
            "hr": [1.5, 1.5, 1.6, 1.4],
            "category": ["ferroptosis", "gene of interest", "ferroptosis", "ferroptosis"],
        }
    )
    rows = forest_table(ranked, info)
    assert rows["score"].tolist() == ["GPX4", "wp4313_ferroptosis", "HMOX1"]
    assert rows["category"].tolist() == ["gene expression", "ferroptosis", "gene expression"]


def test_km_panel_states_the_hr_and_the_cutpoint_p_of_one_statistic():
    from ferrostem.survival_figures import group_hr_text

    rng = np.random.default_rng(3)
    n = 200
    high = rng.random(n) < 0.5
    time = rng.exponential(np.where(high, 500, 1000))
    event = np.ones(n)
    groups = pd.Series(np.where(high, "high", "low"))
    text = group_hr_text(time, event, groups)
    hr = float(text.split()[4])
    assert text.startswith("HR high vs low ") and 1.5 < hr < 2.8
    tertiles = pd.Series(np.where(high, "high", np.where(rng.random(n) < 0.5, "mid", "low")))
    assert group_hr_text(time, event, tertiles).startswith("HR high vs low ")
    assert group_hr_text(time, event, pd.Series(["low"] * n)) == "HR not estimable"
    cut = sv.maxstat_cutpoint(time, event, high.astype(float) + rng.normal(0, 0.1, n))
    assert cut.p_uncorrected <= cut.p_corrected
