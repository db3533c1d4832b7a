"""Survival endpoints declared per cohort: a GEO series with recurrence-free survival (RFS) in months, from a
supplementary sample table, through harmonisation, the survival analysis, the cohort, survival, immune and
genes sections and the cross-cohort table; bad declarations name the cohort and the key."""

from __future__ import annotations

import html
import copy
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from ferrostem.config import validate_config
from ferrostem.endpoints import cohort_endpoint_names, endpoint_names, geo_endpoints, requested_endpoints
from ferrostem.errors import CohortError, ConfigError

from conftest import DEMO_GEO_MAPPING, REPO

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
DEMO = yaml.safe_load((REPO / "config/config.yaml").read_text())
DAYS_PER_MONTH = 365.25 / 12
SCORES = ["ferroptosis_resistance", "stemness", "cytotoxic", "stromal"]
RFS = {"time": "Recurr months", "event": "Recurr status", "unit": "months", "event_values": ["1"]}


def _planted_rfs(demo_dir: Path, seed: int = 11) -> pd.DataFrame:
    """A supplement-shaped table (Affy_GSM, Recurr status, Recurr months) for the demo series: recurrence
    hazard exp(0.7 x ferroptosis_resistance), censored at 5 years or at the sample's overall follow-up."""
    latent = pd.read_csv(demo_dir / "truth" / "latent_array.tsv", sep="\t", index_col="sample_id")
    rng = np.random.default_rng(seed)
    recurrence = rng.exponential(30.0 / np.exp(0.7 * latent["ferroptosis_resistance"].to_numpy()))
    censor = rng.uniform(12.0, 60.0, len(latent))
    return pd.DataFrame(
        {
            "Affy_GSM": latent.index,
            "Recurr status": (recurrence <= censor).astype(int),
            "Recurr months": np.round(np.minimum(recurrence, censor), 1),
        }
    )


@pytest.fixture(scope="module")
def rfs_cohort(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from ferrostem.harmonise import harmonise_cohort

    raw = tmp_path_factory.mktemp("rfs") / "raw"
    shutil.copytree(demo_dir / "geo", raw)
    table = _planted_rfs(demo_dir)
    table.to_csv(raw / "recurrence.tsv", sep="\t", index=False)
    geo = copy.deepcopy(DEMO_GEO_MAPPING) | {
        "sample_table": {"path": "recurrence.tsv", "key": "Affy_GSM"},
        "endpoints": {"RFS": RFS},
    }
    adata = harmonise_cohort({"source": "geo", "accession": "GSE0000", "simulated": True, "geo": geo}, raw)
    return adata, table.set_index("Affy_GSM")


def test_rfs_in_months_is_stored_in_days_and_recorded(rfs_cohort):
    adata, table = rfs_cohort
    obs = adata.obs
    months = table.loc[obs.index, "Recurr months"].to_numpy()
    assert obs["RFS.time"].to_numpy() == pytest.approx(months * DAYS_PER_MONTH)
    assert (obs["RFS"] == table.loc[obs.index, "Recurr status"]).all()
    assert endpoint_names(obs) == ["OS", "RFS"]
    record = adata.uns["harmonisation"]["endpoints"]["RFS"]
    assert record["unit"] == "months" and record["time_field"] == "Recurr months"
    assert record["declared_in"] == "geo.endpoints.RFS" and record["events"] == int(table["Recurr status"].sum())
    assert adata.uns["harmonisation"]["endpoints"]["OS"]["declared_in"] == "geo.fields"


def _scores(demo_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    latent = pd.read_csv(demo_dir / "truth" / "latent_array.tsv", sep="\t", index_col="sample_id")[SCORES]
    info = pd.DataFrame({"category": ["ferroptosis", "stemness", "immune cell", "immune cell"]}, index=SCORES)
    return latent, info


SURVIVAL_BLOCK = {
    "endpoints": "all",
    "covariates": ["age", "stage"],
    "genes_of_interest": ["GPX4"],
    "plots_top": 1,
    "auc_years": [1, 2],
}


@dataclass
class Sections:
    """What workflow/scripts/survival.py makes of one cohort: the analysis and its two sections."""

    table: pd.DataFrame
    scores: pd.DataFrame
    info: pd.DataFrame
    survival: Any
    immune: Any


def cohort_sections(adata, scores, info, *, cohort: str, label: str, models: list) -> Sections:
    from ferrostem.survival import SurvivalSettings
    from ferrostem.survival_report import immune_survival_section, survival_section
    from ferrostem.survival_stage import cohort_survival

    settings = SurvivalSettings.from_config(SURVIVAL_BLOCK)
    result = cohort_survival(adata, scores, info, settings, cohort=cohort, models=models)
    return Sections(
        result.table,
        result.scores,
        result.info,
        survival_section(label, result, top=settings.plots_top, cutpoint_method=settings.cutpoint.p_method),
        immune_survival_section(label, result),
    )


@pytest.fixture(scope="module")
def rfs_survival(rfs_cohort, demo_dir: Path):
    adata, _ = rfs_cohort
    scores, info = _scores(demo_dir)
    return cohort_sections(adata, scores, info, cohort="rfs", label="RFS demo", models=[])


def test_rfs_is_analysed_under_its_name(rfs_cohort, rfs_survival):
    from ferrostem.survival_stage import tumour_samples

    adata, planted = rfs_cohort
    table = rfs_survival.table
    assert list(dict.fromkeys(table["endpoint"])) == ["OS", "RFS"]
    row = table[(table["endpoint"] == "RFS") & (table["score"] == "ferroptosis_resistance")].iloc[0]
    assert row["hr"] > 1.3 and row["p_wald"] < 0.01  # the planted recurrence hazard exp(0.7) per latent unit
    tumours, _ = tumour_samples(adata.obs)
    assert row["events"] == int(planted.loc[tumours, "Recurr status"].sum())
    assert "gene__GPX4" in set(table.loc[table["endpoint"] == "RFS", "score"])


def test_survival_and_immune_sections_name_rfs(rfs_survival):
    from ferrostem.report import render_report

    survival, immune = rfs_survival.survival, rfs_survival.immune
    assert [e["endpoint"] for e in survival.context["endpoints"]] == ["OS", "RFS"]
    assert any(s.startswith("RFS demo, RFS: ") for s in survival.summary)
    assert [b["endpoint"] for b in immune.context["blocks"]] == ["OS", "RFS"]
    html = render_report([survival, immune], cohort="rfs", title="rfs", simulated=True)
    rfs = next(e for e in survival.context["endpoints"] if e["endpoint"] == "RFS")
    assert f"<h3>RFS: {rfs['n']} tumours, {rfs['events']} events</h3>" in html
    assert "Univariate Cox hazard ratios per SD, RFS." in html
    assert "<h3>RFS: survival per immune cell type</h3>" in html


def test_genes_of_interest_table_lists_rfs(rfs_cohort, rfs_survival):
    from ferrostem.genes_report import genes_section

    adata, _ = rfs_cohort
    section = genes_section(
        "RFS demo",
        adata,
        ["GPX4"],
        scores=rfs_survival.scores,
        info=rfs_survival.info,
        survival_tables=[rfs_survival.table],
        checkpoint_genes=[],
        panels={},
    )
    assert ">RFS<" in section.context["survival_table"] and ">OS<" in section.context["survival_table"]


def test_cohort_section_tables_and_draws_every_endpoint(rfs_cohort):
    from ferrostem.cohort_report import cohort_section

    adata, table = rfs_cohort
    section = cohort_section(adata, "RFS demo")
    endpoints = section.context["endpoints"]
    assert "Recurr months / Recurr status (months)" in endpoints and ">RFS<" in endpoints
    assert "survival months / survival status (months)" in endpoints
    tumours = adata.obs["tissue"] == "tumor"
    events = int(adata.obs.loc[tumours, "RFS"].sum())
    assert section.summary[0].endswith(f"{events} RFS events.")
    assert any(
        f["caption"] == "Kaplan-Meier estimate of each survival endpoint (OS, RFS), all tumours."
        for f in section.context["figures"]
    )
    assert not any("follow-up" in w for w in section.warnings)  # months declared as months: plausible
    rules = html.unescape(section.context["harmonisation"])  # cells are HTML-escaped
    assert "RFS times ('Recurr months', months)" in rules and "converted to days (x 30.44)" in rules


def test_tcga_cohort_section_needs_no_declaration(demo_rnaseq):
    from ferrostem.cohort_report import cohort_section

    section = cohort_section(demo_rnaseq, "demo")
    table = section.context["endpoints"]
    assert ">OS<" in table and ">GDC /cases (TCGAbiolinks OS convention) (days)<" in table
    assert not any(f">{name}<" in table for name in ("DSS", "DFI", "PFI"))  # columns present, no data


def test_rfs_months_declared_as_days_is_flagged_with_its_key(demo_dir):
    from ferrostem.survival import follow_up_warnings

    table = _planted_rfs(demo_dir)
    obs = pd.DataFrame({"RFS": table["Recurr status"].to_numpy(), "RFS.time": table["Recurr months"].to_numpy()})
    declared = {"RFS": {"unit": "days", "declared_in": "geo.endpoints.RFS"}}
    (warning,) = follow_up_warnings(obs, None, declared)
    assert warning.startswith("RFS: ") and "declared time unit (days)" in warning
    assert "Check geo.endpoints.RFS.unit" in warning


def test_cross_cohort_pools_rfs_by_name(rfs_cohort, rfs_survival, demo_dir):
    from ferrostem.survival_report import cross_cohort_section
    from ferrostem.survival_stage import cross_cohort_tables

    adata, _ = rfs_cohort
    half = adata[adata.obs_names[::2]].copy()
    scores, info = _scores(demo_dir)
    other = cohort_sections(half, scores, info, cohort="half", label="half", models=[])
    meta = cross_cohort_tables({"rfs": rfs_survival.table, "half": other.table})
    assert set(meta["endpoint"]) == {"OS", "RFS"}
    row = meta[(meta["endpoint"] == "RFS") & (meta["score"] == "ferroptosis_resistance")].iloc[0]
    assert row["cohorts"] == 2 and row["same_direction"] and row["meta_hr"] > 1.2
    section = cross_cohort_section(meta, ["rfs", "half"])
    assert [b["endpoint"] for b in section.context["blocks"]] == ["OS", "RFS"]
    assert any(s.startswith("RFS: ") for s in section.summary)


def test_lasso_trains_on_rfs_and_the_model_is_reported_on_rfs(rfs_cohort, demo_dir):
    from ferrostem import risk_models as md
    from ferrostem.demo import FERROPTOSIS_RESISTANCE
    from ferrostem.survival import endpoint_frame
    from ferrostem.survival_stage import tumour_samples

    adata, _ = rfs_cohort
    tumours, _ = tumour_samples(adata.obs)
    surv, _ = endpoint_frame(adata.obs.loc[tumours], "RFS")
    universe = [g for g in [*FERROPTOSIS_RESISTANCE, "GAPDH", "ACTB", "TFRC", "NFS1"] if g in adata.var_names]
    model = md.lasso_cox(
        md.log2_expression(adata, universe).loc[surv.index],
        surv["time"].to_numpy(),
        surv["event"].to_numpy(),
        endpoint="RFS",
        universe=universe,
        seed=1,
    )
    entry = md.risk_score_entry(model, "rfs")
    assert entry["id"] == "lasso_cox_rfs_rfs" and entry["training"]["endpoint"] == "RFS"
    scores, info = _scores(demo_dir)
    result = cohort_sections(adata, scores, info, cohort="rfs", label="RFS demo", models=[(entry, model.cv)])
    assert [m["name"] for m in result.survival.context["models"]][0].startswith("LASSO-Cox RFS risk score")
    without = adata.copy()
    without.obs = without.obs.drop(columns=["RFS", "RFS.time"])
    result = cohort_sections(without, scores, info, cohort="os_only", label="OS only", models=[(entry, model.cv)])
    assert "risk model lasso_cox_rfs_rfs: endpoint RFS not available in os_only" in result.survival.warnings
    with pytest.raises(
        CohortError, match=r"endpoint RFS: no RFS / RFS.time column in this cohort \(its endpoints: OS\)"
    ):
        endpoint_frame(without.obs, "RFS")


def test_an_endpoint_without_events_gives_notes_not_a_crash(rfs_cohort, demo_dir):
    from ferrostem.harmonise import endpoint_notes, geo_survival_columns
    from ferrostem.cohort_report import cohort_section
    from ferrostem.errors import ConfigError, InputFormatError

    geo = {
        "endpoints": {
            "DMFS": {"time": "recurr months", "event": "recurr status", "unit": "months", "event_values": ["yes"]}
        }
    }
    # a time that is not a number, and statuses that are events under another spelling, stop the run
    bad_time = pd.DataFrame({"Recurr months": ["10.5", "soon"], "Recurr status": ["0", "0"]}, index=["GSM1", "GSM4"])
    with pytest.raises(
        InputFormatError, match=r"S.txt: column 'recurr months' \(DMFS.time\) holds 1 value.*GSM4: 'soon'"
    ):
        geo_survival_columns(bad_time, geo, "S.txt")
    spelled = pd.DataFrame({"Recurr months": ["10.5", "20"], "Recurr status": ["0", "1"]}, index=["GSM1", "GSM2"])
    with pytest.raises(
        ConfigError,
        match=r"column 'recurr status' \(DMFS\) has no event: none of its values "
        r"\['0', '1'\] is in the event_values \['yes'\] of geo.endpoints.DMFS",
    ):
        geo_survival_columns(spelled, geo, "S.txt")
    # only censoring codes: truly no event; kept and noted
    samples = pd.DataFrame(
        {"Recurr months": ["10.5", "20", "n/a"], "Recurr status": ["0", "0", "0"]}, index=["GSM1", "GSM2", "GSM3"]
    )
    columns, records = geo_survival_columns(samples, geo, "S.txt")
    assert columns["DMFS"].tolist() == [0.0, 0.0, 0.0] and np.isnan(columns["DMFS.time"].iloc[2])
    notes = endpoint_notes(records, "S.txt")
    assert any(
        "S.txt: endpoint DMFS: no event among 2 samples: no value of column 'Recurr status' is one of the "
        "event values ['yes'] (values found: ['0']); check geo.endpoints.DMFS (event_values)" in n
        for n in notes
    )

    adata, _ = rfs_cohort
    censored = adata.copy()
    censored.obs["RFS"] = 0.0
    scores, info = _scores(demo_dir)
    result = cohort_sections(censored, scores, info, cohort="c", label="c", models=[])
    assert set(result.table["endpoint"]) == {"OS"}
    assert any(
        w.startswith("RFS: no events among ") and "every follow-up is censored" in w for w in result.survival.warnings
    )
    section = cohort_section(censored, "c")
    assert any(w.startswith("endpoint RFS: no event among the ") and "geo.endpoints.RFS" in w for w in section.warnings)


# --- declarations ---------------------------------------------------------------------------------


def test_geo_endpoints_read_both_forms():
    geo = {
        "time_unit": "months",
        "fields": {"OS.time": "os months", "OS": "os status"},
        "event_values": ["dead"],
        "endpoints": {"RFS": {"time": "rfs days", "event": "rfs", "unit": "days"}, "TTR": {"time": "t", "event": "e"}},
    }
    declared = {d.name: d for d in geo_endpoints(geo, "cohorts.x")}
    assert list(declared) == ["OS", "RFS", "TTR"]
    assert declared["OS"].unit == "months" and declared["OS"].event_values == ("dead",)
    assert declared["RFS"].unit == "days" and declared["RFS"].days_per_unit == 1.0
    assert declared["TTR"].unit == "months" and declared["TTR"].declared_in == "geo.endpoints.TTR"


@pytest.mark.parametrize(
    "geo, message",
    [
        (
            {"endpoints": {"RFS": {"event": "e", "unit": "months"}}},
            r"cohorts\.x: geo\.endpoints\.RFS: no time field; an endpoint needs",
        ),
        ({"endpoints": {"RFS": {"time": "t", "unit": "months"}}}, r"cohorts\.x: geo\.endpoints\.RFS: no event field"),
        (
            {"endpoints": {"RFS": {"time": "t", "event": "e", "unit": "fortnights"}}},
            r"cohorts\.x: geo\.endpoints\.RFS\.unit = 'fortnights' is not understood; use one of days, weeks, months, years",  # noqa: E501 (a message or record quoted whole)
        ),
        (
            {"endpoints": {"RFS": {"time": "t", "event": "e"}}},
            r"cohorts\.x: geo\.endpoints\.RFS: no unit; state the unit of its times .* as geo\.endpoints\.RFS\.unit or "
            r"geo\.time_unit",
        ),
        (
            {"endpoints": {"R FS": {"time": "t", "event": "e", "unit": "days"}}},
            r"cohorts\.x: geo\.endpoints\.R FS: endpoint name 'R FS' is not a safe identifier",
        ),
        (
            {"endpoints": {"RFS": {"time": "t", "event": "e", "unit": "days", "censor": "0"}}},
            r"cohorts\.x: geo\.endpoints\.RFS: unknown keys \['censor'\]",
        ),
        (
            {
                "time_unit": "days",
                "fields": {"OS.time": "t", "OS": "e"},
                "endpoints": {"OS": {"time": "t", "event": "e"}},
            },
            r"cohorts\.x: geo\.endpoints\.OS: endpoint OS is also mapped in geo\.fields; declare it once",
        ),
        ({"time_unit": "days", "fields": {"OS": "e"}}, r"cohorts\.x: geo\.fields maps OS but not OS\.time"),
    ],
)
def test_bad_endpoint_declarations_name_cohort_and_key(geo, message):
    with pytest.raises(ConfigError, match=message):
        geo_endpoints(geo, "cohorts.x")


def _demo_with(change):
    config = copy.deepcopy(DEMO)
    change(config)
    return config


RFS_DEMO = {"time": "survival months", "event": "survival status"}


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda c: c["cohorts"]["demo_geo"]["geo"].update(endpoints={"RFS": {"event": "survival status"}}),
            r"cohorts\.demo_geo\.geo\.endpoints\.RFS: 'time' is a required property",
        ),
        (
            lambda c: c["cohorts"]["demo_geo"]["geo"].update(endpoints={"RFS": RFS_DEMO | {"unit": "fortnights"}}),
            r"cohorts\.demo_geo\.geo\.endpoints\.RFS\.unit = 'fortnights' is not allowed; allowed values: days, weeks",
        ),
        (
            lambda c: c["cohorts"]["demo_geo"]["geo"].update(endpoints={"R-FS": RFS_DEMO}),
            r"cohorts\.demo_geo\.geo\.endpoints: key 'R-FS' is not allowed; keys must match",
        ),
        (
            lambda c: c["survival"].update(endpoints=["OS", "recurrence free"]),
            r"survival\.endpoints\.1 = 'recurrence free' does not match the pattern",
        ),
        (
            lambda c: (
                c["cohorts"]["demo_geo"]["geo"].pop("time_unit"),
                c["cohorts"]["demo_geo"]["geo"]["fields"].pop("OS.time"),
                c["cohorts"]["demo_geo"]["geo"]["fields"].pop("OS"),
                c["cohorts"]["demo_geo"]["geo"].update(endpoints={"RFS": RFS_DEMO}),
            ),
            r"cohorts\.demo_geo: geo\.endpoints\.RFS: no unit",
        ),
        (
            lambda c: c["survival"].update(
                lasso={"enabled": True, "discovery": "demo_tcga", "endpoint": "RFS", "universe": ["GPX4", "SLC7A11"]}
            ),
            r"survival\.lasso\.endpoint = 'RFS': the discovery cohort demo_tcga has no such endpoint \(its endpoints: OS\)",  # noqa: E501 (a message or record quoted whole)
        ),
    ],
)
def test_config_endpoint_errors_name_cohort_and_key(change, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(_demo_with(change), SCHEMA)


def test_any_declared_endpoint_is_a_valid_config():
    def rfs(c):
        c["cohorts"]["demo_geo"]["geo"]["endpoints"] = {"RFS": RFS_DEMO}
        c["survival"]["endpoints"] = ["OS", "RFS", "DMFS"]  # DMFS: no cohort has it, skipped with a note
        c["survival"]["lasso"] = {"enabled": True, "discovery": "demo_geo", "endpoint": "RFS", "universe": ["A", "B"]}

    config = _demo_with(rfs)
    validate_config(config, SCHEMA)
    assert cohort_endpoint_names(config["cohorts"]["demo_geo"], "demo_geo") == ["OS", "RFS"]
    obs = pd.DataFrame({"OS": [1.0, 0.0], "OS.time": [10.0, 20.0], "DSS": [np.nan] * 2, "DSS.time": [np.nan] * 2})
    assert requested_endpoints("all", obs) == ["OS"] and requested_endpoints(["OS", "RFS"], obs) == ["OS", "RFS"]


def test_shipped_gse14520_declares_os_and_rfs_from_the_supplement():
    config = yaml.safe_load((REPO / "config/cohorts/gse14520.yaml").read_text())
    validate_config(config, SCHEMA)
    declared = {d.name: d for d in geo_endpoints(config["cohorts"]["gse14520"]["geo"], "cohorts.gse14520")}
    assert list(declared) == ["OS", "RFS"]
    assert (declared["RFS"].time, declared["RFS"].event, declared["RFS"].unit) == (
        "Recurr months",
        "Recurr status",
        "months",
    )
    assert declared["OS"].time == "Survival months" and declared["RFS"].event_values == ("1",)
