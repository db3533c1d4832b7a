"""Pan-cancer tables, page, the 33-project config's DAG, and a run on three simulated GDC projects."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake
from ferrostem.errors import InputFormatError
from ferrostem.pancancer import (
    NO_NORMALS,
    core_regulator_changes,
    meta_across_cancers,
    score_hazard_ratios,
    stemness_correlations,
)
from ferrostem.pancancer_report import pancancer_section
from ferrostem.survival import random_effects_meta

PANCANCER_CONFIG = REPO / "config" / "cohorts" / "tcga-pancancer.yaml"
TCGA_PROJECTS = {  # the 33 TCGA projects of the GDC
    "ACC",
    "BLCA",
    "BRCA",
    "CESC",
    "CHOL",
    "COAD",
    "DLBC",
    "ESCA",
    "GBM",
    "HNSC",
    "KICH",
    "KIRC",
    "KIRP",
    "LAML",
    "LGG",
    "LIHC",
    "LUAD",
    "LUSC",
    "MESO",
    "OV",
    "PAAD",
    "PCPG",
    "PRAD",
    "READ",
    "SARC",
    "SKCM",
    "STAD",
    "TGCT",
    "THCA",
    "THYM",
    "UCEC",
    "UCS",
    "UVM",
}


def _de(rows: dict[str, tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"gene_id": f"ENSG{i}", "symbol": g, "log2FC": fc, "padj": q} for i, (g, (fc, q)) in enumerate(rows.items())]
    )


def _survival(rows: list[tuple[str, str, float, float, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["score", "endpoint", "coef", "se", "category"])
    frame["hr"] = np.exp(frame["coef"])
    frame["hr_lower"] = np.exp(frame["coef"] - 1.96 * frame["se"])
    frame["hr_upper"] = np.exp(frame["coef"] + 1.96 * frame["se"])
    frame["p_wald"] = 0.01
    frame["fdr"] = 0.02
    return frame


def test_core_regulator_changes_keep_signs_fdr_and_mark_cancers_without_normals():
    tables = {"A": _de({"GPX4": (1.5, 0.001), "ACSL4": (-0.2, 0.6)}), "B": _de({"GPX4": (-1.1, 0.01)}), "C": None}
    changes = core_regulator_changes(tables, ["GPX4", "ACSL4"], alpha=0.05).set_index(["cancer", "gene"])
    assert changes.loc[("A", "GPX4"), "log2fc"] == 1.5 and changes.loc[("A", "GPX4"), "significant"]
    assert not changes.loc[("A", "ACSL4"), "significant"]
    assert changes.loc[("B", "GPX4"), "log2fc"] == -1.1
    assert changes.loc[("B", "ACSL4"), "status"] == "not measured"
    assert (changes.loc["C", "status"] == NO_NORMALS).all() and changes.loc["C", "log2fc"].isna().all()
    with pytest.raises(InputFormatError, match=r"A de.tsv: column\(s\) padj missing"):
        core_regulator_changes({"A": _de({"GPX4": (1, 0.1)}).drop(columns="padj")}, ["GPX4"], alpha=0.05)


def test_hazards_keep_the_score_categories_and_the_meta_analysis_is_dersimonian_laird():
    a = _survival(
        [
            ("ferro", "OS", 0.5, 0.2, "ferroptosis"),
            ("stem", "OS", 0.1, 0.3, "stemness"),
            ("purity", "OS", 0.3, 0.2, "microenvironment"),
        ]
    )
    b = _survival([("ferro", "OS", 0.2, 0.25, "ferroptosis"), ("ferro", "PFI", 0.4, 0.2, "ferroptosis")])
    c = _survival([("ferro", "OS", -0.1, 0.3, "ferroptosis")])
    hazards = score_hazard_ratios({"A": a, "B": b, "C": c})
    assert set(hazards["score"]) == {"ferro", "stem"}  # microenvironment scores are not on the page
    meta = meta_across_cancers(hazards)
    row = meta[(meta["score"] == "ferro") & (meta["endpoint"] == "OS")].iloc[0]
    expected = random_effects_meta(np.array([0.5, 0.2, -0.1]), np.array([0.2, 0.25, 0.3]))
    assert row["cancers"] == 3 and row["category"] == "ferroptosis"
    assert row["meta_hr"] == pytest.approx(expected.hr) and row["i2"] == pytest.approx(expected.i2)
    assert not row["same_direction"]
    assert set(meta["endpoint"]) == {"OS"}  # PFI and the stemness score are in one cancer only


def test_stemness_correlations_use_tumours_only_and_name_a_missing_index():
    rng = np.random.default_rng(0)
    n = 40
    stem = rng.standard_normal(n)
    tissue = np.array(["tumor"] * 30 + ["normal"] * 10)
    # over tumours the ferroptosis score follows the index; the normals would reverse it if they were counted
    ferro = np.where(tissue == "tumor", stem + 0.3 * rng.standard_normal(n), -20 * stem)
    table = pd.DataFrame(
        {"tissue": tissue, "stem_index": stem, "ferro": ferro, "cd8": rng.standard_normal(n)},
        index=[f"s{i}" for i in range(n)],
    )
    info = pd.DataFrame(
        {"score": ["stem_index", "ferro", "cd8"], "category": ["stemness", "ferroptosis", "immune cell"]}
    )
    corr = stemness_correlations(
        {"A": table, "B": table.drop(columns="stem_index")}, {"A": info, "B": info}, stemness_index="stem_index"
    )
    tested = corr[corr["cancer"] == "A"]
    assert list(tested["score"]) == ["ferro"] and tested.iloc[0]["n"] == 30 and tested.iloc[0]["rho"] > 0.8
    assert corr[corr["cancer"] == "B"].iloc[0]["status"] == "stem_index not scored in this cohort"


def test_section_summarises_signs_and_marks_cancers_without_normals():
    changes = core_regulator_changes(
        {"A": _de({"GPX4": (1.5, 0.001)}), "B": _de({"GPX4": (-1.2, 0.01)}), "C": None}, ["GPX4"], alpha=0.05
    )
    hazards = score_hazard_ratios(
        {
            "A": _survival([("ferro", "OS", 0.5, 0.2, "ferroptosis")]),
            "B": _survival([("ferro", "OS", 0.3, 0.2, "ferroptosis")]),
        }
    )
    empty = pd.DataFrame(columns=["cancer", "score", "n", "rho", "p", "fdr", "status"])
    section = pancancer_section(
        changes,
        hazards,
        empty,
        meta_across_cancers(hazards),
        cancers=["A", "B", "C"],
        stemness_index="stem_index",
        alpha=0.05,
    )
    assert section.context["without_normals"] == ["C"]
    assert "GPX4: higher in tumours of A, lower in B (FDR < 0.05)" in section.summary
    assert section.context["regulator_figure"].startswith("data:image/png")
    assert len(section.context["meta_blocks"]) == 1


def test_pancancer_config_has_33_projects_and_its_dag_builds_offline(tmp_path: Path):
    config = yaml.safe_load(PANCANCER_CONFIG.read_text())
    projects = {c["project"].removeprefix("TCGA-") for c in config["cohorts"].values()}
    assert projects == TCGA_PROJECTS and len(config["cohorts"]) == 33
    assert all(c["survival_source"] == "cdr" for c in config["cohorts"].values())
    assert config["survival"]["endpoints"] == ["PFI", "OS"] and config["pancancer"]["enabled"]
    assert "Liu et al. 2018" in PANCANCER_CONFIG.read_text() and "could not be verified" in PANCANCER_CONFIG.read_text()
    result = run_snakemake(tmp_path, "-n", "--configfile", str(PANCANCER_CONFIG))
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.MULTILINE))
    with_normals = sum(1 for c in config["cohorts"].values() if c.get("comparisons"))
    assert counts["download_cohort"] == "33" and counts["survival"] == "33" and counts["pancancer"] == "1"
    assert counts["de"] == str(with_normals) and 0 < with_normals < 33
    assert not (tmp_path / "results").exists()  # a dry run downloads nothing


def test_pancancer_needs_two_cohorts(tmp_path: Path):
    config = yaml.safe_load(PANCANCER_CONFIG.read_text())
    config["cohorts"] = {"tcga_lihc": config["cohorts"]["tcga_lihc"]}
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake(tmp_path, "-n", "--configfile", str(path), check=False)
    assert result.returncode != 0
    assert "pancancer.enabled: the pan-cancer page needs two or more cohorts, found 1" in result.stdout + result.stderr


# --- end to end: three simulated GDC projects in one local mirror ------------------------------------------

SIMULATED = {  # project -> (seed, normals, planted tumour-vs-normal log2FC)
    "TCGA-SIMA": (11, 8, {"SLC7A11": 2.5, "TFRC": 2.0, "NCOA4": -2.0}),
    "TCGA-SIMB": (12, 8, {"SLC7A11": 2.5, "TFRC": -2.0, "NCOA4": -2.0}),
    "TCGA-SIMC": (14, 0, {"SLC7A11": 2.5}),
}


@pytest.fixture(scope="module")
def pancancer_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ferrostem.demo import DemoParameters, write_gdc_project

    workdir = tmp_path_factory.mktemp("pancancer")
    mirror = workdir / "mirror"
    cohorts = {}
    for project, (seed, normals, planted) in SIMULATED.items():
        write_gdc_project(
            mirror,
            DemoParameters(
                seed=seed, project=project, n_tumor=30, n_normal=normals, n_extra_aliquots=1, tumor_vs_normal=planted
            ),
        )
        cohorts[project.removeprefix("TCGA-").lower()] = {
            "label": f"{project} (simulated)",
            "source": "gdc",
            "project": project,
            "simulated": True,
            "survival_source": "source",
            "comparisons": [{"name": "tumour_vs_normal", "column": "tissue", "test": "tumor", "reference": "normal"}]
            if normals
            else [],
        }
    config = {
        "results": "results",
        "mirror": str(mirror),
        "resources": {"fetch": False},
        "cohorts": cohorts,
        "de": {"threads": 1},
        "survival": {"endpoints": ["OS"], "auc_years": [1], "ph_check_top": 0, "genes_of_interest": []},
        "pancancer": {"enabled": True, "stemness_index": "msigdb_malta_curated_stemness_markers"},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # the page and what it reads only: no per-cohort report, enrichment or genes-of-interest jobs
    run_snakemake(workdir, "results/pancancer/report.html", "--configfile", str(workdir / "config.yaml"))
    return workdir / "results" / "pancancer"


@pytest.mark.e2e
def test_pancancer_page_recovers_what_was_planted(pancancer_run: Path):
    changes = pd.read_csv(pancancer_run / "core_regulators_log2fc.tsv", sep="\t").set_index(["cancer", "gene"])
    for project, (_, normals, planted) in SIMULATED.items():
        cancer = project.removeprefix("TCGA-").lower()
        if not normals:
            assert (changes.loc[cancer, "status"] == NO_NORMALS).all()
            continue
        for gene, fc in planted.items():
            row = changes.loc[(cancer, gene)]
            assert row["significant"] and np.sign(row["log2fc"]) == np.sign(fc), (cancer, gene, row.to_dict())
    html = (pancancer_run / "report.html").read_text()
    assert "Without normal samples (no tumour-vs-normal comparison): simc." in html
    assert "TFRC: higher in tumours of sima, lower in simb (FDR &lt; 0.05)" in html
    assert "SLC7A11: higher in tumours of sima, simb, lower in no cancer" in html

    hazards = pd.read_csv(pancancer_run / "hazard_ratios.tsv", sep="\t")
    assert set(hazards["cancer"]) == {"sima", "simb", "simc"}  # a cancer without normals still has survival
    assert set(hazards["category"]) <= {"ferroptosis", "stemness", "immune cell", "immune response"}
    meta = pd.read_csv(pancancer_run / "meta_analysis.tsv", sep="\t").set_index(["endpoint", "score"])
    pooled = meta.loc[("OS", "ferroptosis_core_resistance")]  # planted: HR 1.8 per SD of ferroptosis resistance
    assert pooled["cancers"] == 3 and pooled["meta_hr"] > 1 and pooled["meta_p"] < 0.05

    corr = pd.read_csv(pancancer_run / "stemness_correlations.tsv", sep="\t")
    resistance = corr[corr["score"] == "ferroptosis_core_resistance"].set_index("cancer")
    # planted: stemness = 0.7 x ferroptosis resistance + noise, in every project
    assert len(resistance) == 3 and (resistance["rho"] > 0).all() and (resistance["n"] == 30).all()
