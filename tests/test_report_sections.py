"""Every report section builder renders its template with undefined variables failing (jinja2 StrictUndefined).

One builder call per template in templates/sections/, on small real inputs (the simulated demo cohort, toy
survival data); a template added without a builder here fails `test_every_section_template_has_a_builder`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import pytest

from ferrostem import report
from ferrostem.report import Section, render_report

SECTION_TEMPLATES = sorted(p.name for p in (report.TEMPLATES / "sections").glob("*.j2"))
TUMOUR_SCORES = ["ferroptosis_score", "stemness_score", "tcells", "cytolytic"]
SCORE_INFO = pd.DataFrame(
    {"category": ["ferroptosis", "stemness", "immune cell", "immune response"]}, index=TUMOUR_SCORES
)


def _toy_survival(n: int = 60, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    obs = pd.DataFrame(
        {
            "OS": (rng.uniform(size=n) < 0.7).astype(float),
            "OS.time": np.ceil(rng.exponential(800 / np.exp(0.5 * x))),
            "age": rng.normal(60, 10, n),
            "stage": rng.choice(["Stage I", "Stage II", "Stage III"], n),
            "sex": rng.choice(["male", "female"], n),
        },
        index=[f"s{i}" for i in range(n)],
    )
    scores = pd.DataFrame(rng.standard_normal((n, len(TUMOUR_SCORES))), index=obs.index, columns=TUMOUR_SCORES)
    scores["ferroptosis_score"] += x
    return obs, scores


@pytest.fixture(scope="module")
def endpoint_result():
    from ferrostem import survival as sv

    obs, scores = _toy_survival()
    return sv.analyse_endpoint(obs, scores, "OS", sv.SurvivalSettings.from_config({"covariates": ["age"]})), scores


@pytest.fixture(scope="module")
def de_result(demo_rnaseq):
    from ferrostem.de import Comparison, DESettings, differential_expression

    adata = demo_rnaseq[:, :800].copy()
    return differential_expression(
        adata, Comparison("tumour_vs_normal", "tissue", "tumor", "normal"), DESettings(), cohort="demo"
    )


@pytest.fixture(scope="module")
def cohort_scores(demo_rnaseq):
    from ferrostem.scoring import score_cohort
    from ferrostem.signature_report import annotate
    from ferrostem.signatures import load_alias_table, load_catalogue

    signatures = [s for s in load_catalogue() if not s.needs_resource]
    log2 = pd.DataFrame(demo_rnaseq.layers["log2"], index=demo_rnaseq.obs_names, columns=demo_rnaseq.var_names)
    linear = pd.DataFrame(demo_rnaseq.layers["tpm"], index=demo_rnaseq.obs_names, columns=demo_rnaseq.var_names)
    result = score_cohort(log2, linear, signatures, load_alias_table())
    return result, annotate(result.scores, demo_rnaseq.obs)


def cohort(request) -> Section:
    from ferrostem.cohort_report import cohort_section

    return cohort_section(request.getfixturevalue("demo_rnaseq"), "demo")


def provenance(request) -> Section:
    from ferrostem.cohort_report import provenance_section

    return provenance_section(
        request.getfixturevalue("demo_rnaseq"),
        {"source": "gdc", "project": "TCGA-DEMO"},
        {"cohorts": {"demo": {"source": "gdc"}}},
    )


def de(request) -> Section:
    from ferrostem.de_report import de_section

    return de_section(
        request.getfixturevalue("de_result"),
        cohort="demo",
        alpha=0.05,
        top_genes=5,
        simulated=True,
        table_path="results/demo/de/tumour_vs_normal/de.tsv",
    )


def enrichment(request) -> Section:
    from ferrostem.enrichment import CollectionSpec, EnrichmentSettings, enrich
    from ferrostem.enrichment_report import enrichment_section

    table = request.getfixturevalue("de_result").table
    ranked = table.dropna(subset=["stat"]).sort_values("stat")["symbol"].tolist()
    gmt = request.getfixturevalue("tmp_path") / "mine.gmt"
    gmt.write_text("LOW\tx\t" + "\t".join(ranked[:30]) + "\nHIGH\tx\t" + "\t".join(ranked[-30:]) + "\n")
    settings = EnrichmentSettings(permutations=100)
    result = enrich(
        table,
        [(CollectionSpec.from_config("mine", {"gmt": str(gmt), "theme": "ferroptosis"}), [])],
        settings,
        alpha=0.05,
    )
    return enrichment_section(result, settings, cohort="demo", comparison="tumour_vs_normal", test="tumor", alpha=0.05)


def signatures(request) -> Section:
    from ferrostem.signature_report import signatures_section

    result, annotated = request.getfixturevalue("cohort_scores")
    return signatures_section(
        result, annotated, order_by="ferroptosis_core_resistance", min_coverage=0.7, normalise_ssgsea=True
    )


def immune(request) -> Section:
    from ferrostem.signature_report import immune_section

    result, annotated = request.getfixturevalue("cohort_scores")
    return immune_section(result, annotated, order_by="ferroptosis_core_resistance")


def _cohort_survival(request):
    from ferrostem.survival_stage import CohortSurvival

    result, scores = request.getfixturevalue("endpoint_result")
    return CohortSurvival(
        cohort="toy",
        results=[result],
        table=result.table,
        terms=pd.DataFrame(),
        scores=scores,
        info=SCORE_INFO,
        models=[],
        notes=[],
    )


def survival(request) -> Section:
    from ferrostem.survival_report import survival_section

    return survival_section("toy", _cohort_survival(request), top=2, cutpoint_method="lausen92", forest_rows=5)


def immune_survival(request) -> Section:
    from ferrostem.survival_report import immune_survival_section

    return immune_survival_section("toy", _cohort_survival(request))


def genes(request) -> Section:
    from ferrostem.genes_report import genes_section

    adata = request.getfixturevalue("demo_rnaseq")
    rng = np.random.default_rng(2)
    scores = pd.DataFrame(
        rng.standard_normal((adata.n_obs, len(TUMOUR_SCORES))), index=adata.obs_names, columns=TUMOUR_SCORES
    )
    result, _ = request.getfixturevalue("endpoint_result")
    return genes_section(
        "demo",
        adata,
        ["GPX4", "SLC7A11"],
        scores=scores,
        info=SCORE_INFO,
        survival_tables=[result.table],
        checkpoint_genes=["PDCD1", "CD274"],
        panels={"core": ["GPX4", "SLC7A11", "AIFM2"]},
        panel_folds=3,
    )


def cross_cohort(request) -> Section:
    from ferrostem import survival as sv
    from ferrostem.survival_report import cross_cohort_section
    from ferrostem.survival_stage import cross_cohort_tables

    tables = {}
    for name, seed in (("one", 1), ("two", 2)):
        obs, scores = _toy_survival(seed=seed)
        tables[name] = sv.analyse_endpoint(
            obs, scores, "OS", sv.SurvivalSettings.from_config({"covariates": ["age"]})
        ).table
    return cross_cohort_section(cross_cohort_tables(tables), list(tables))


def pancancer(request) -> Section:
    from ferrostem.pancancer import core_regulator_changes, meta_across_cancers, score_hazard_ratios
    from ferrostem.pancancer_report import pancancer_section

    def de_table(rows: dict[str, tuple[float, float]]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"gene_id": f"ENSG{i}", "symbol": g, "log2FC": fc, "padj": q}
                for i, (g, (fc, q)) in enumerate(rows.items())
            ]
        )

    def hazards_table(coef: float) -> pd.DataFrame:
        frame = pd.DataFrame(
            [("ferro", "OS", coef, 0.2, "ferroptosis")], columns=["score", "endpoint", "coef", "se", "category"]
        )
        frame["hr"], frame["p_wald"], frame["fdr"] = np.exp(frame["coef"]), 0.01, 0.02
        frame["hr_lower"], frame["hr_upper"] = np.exp(frame["coef"] - 0.392), np.exp(frame["coef"] + 0.392)
        return frame

    changes = core_regulator_changes(
        {"A": de_table({"GPX4": (1.5, 0.001)}), "B": de_table({"GPX4": (-1.2, 0.01)}), "C": None}, ["GPX4"], alpha=0.05
    )
    hazards = score_hazard_ratios({"A": hazards_table(0.5), "B": hazards_table(0.3)})
    correlations = pd.DataFrame(
        [{"cancer": "A", "score": "ferro", "n": 30, "rho": 0.8, "p": 1e-6, "fdr": 1e-5, "status": "tested"}]
    )
    return pancancer_section(
        changes,
        hazards,
        correlations,
        meta_across_cancers(hazards),
        cancers=["A", "B", "C"],
        stemness_index="stem_index",
        alpha=0.05,
    )


def deconvolution(request) -> Section:
    from ferrostem.deconvolution_report import deconvolution_section, deconvolve_cohort

    adata = request.getfixturevalue("demo_rnaseq")
    layers = {
        name: pd.DataFrame(adata.layers[name], index=adata.obs_names, columns=adata.var_names)
        for name in ("tpm", "log2")
    }
    result = deconvolve_cohort(
        layers,
        dict(adata.uns["layer_scales"]),
        ["quantiseq", "ips"],
        min_coverage=0.5,
        quantiseq_tumour=False,
        cibersort_matrix=None,
        cibersort_left_out=None,
        permutations=0,
        seed=0,
    )
    return deconvolution_section(result, adata.obs)


def subtypes(request) -> Section:
    from ferrostem.risk_models import resolve_universe
    from ferrostem.subtype_report import cohort_subtypes
    from ferrostem.subtypes import SubtypeSettings

    adata = request.getfixturevalue("demo_rnaseq")
    regulators = resolve_universe(
        {"catalogue": ["ferroptosis_core_regulators"]}, Path(__file__).parents[1] / "resources" / "signatures"
    )
    info = pd.DataFrame({"category": ["checkpoint"]}, index=pd.Index(["checkpoint_score"], name="score"))
    scores = pd.DataFrame(
        {"checkpoint_score": np.asarray(adata[:, "CD274"].layers["log2"]).ravel()}, index=adata.obs_names
    )
    outcome = cohort_subtypes(
        adata,
        scores,
        info,
        SubtypeSettings.from_config({"resamples": 50, "de": False}),
        regulators=regulators,
        checkpoint_genes=["CD274"],
        cohort="demo",
        label="Demo",
    )
    return outcome.section


def clinical_models(request) -> Section:
    from ferrostem.clinical_models_report import cohort_clinical_models

    import test_clinical_models as fixture

    data = pd.read_csv(fixture.DATA / "data.tsv", sep="\t")
    adata = fixture._adata(data)
    scores = pd.DataFrame({"risk": data["risk"].to_numpy()}, index=adata.obs_names)
    info = pd.DataFrame({"category": ["risk score"]}, index=["risk"])
    return cohort_clinical_models(
        adata, scores, info, {"bootstrap": 3, "horizons": [1, 3]}, models=[], cohort="x", label="fixture"
    ).section


BUILDERS: dict[str, Callable[[pytest.FixtureRequest], Section]] = {
    "cohort.html.j2": cohort,
    "provenance.html.j2": provenance,
    "de.html.j2": de,
    "enrichment.html.j2": enrichment,
    "signatures.html.j2": signatures,
    "immune.html.j2": immune,
    "survival.html.j2": survival,
    "immune_survival.html.j2": immune_survival,
    "genes.html.j2": genes,
    "cross_cohort.html.j2": cross_cohort,
    "pancancer.html.j2": pancancer,
    "deconvolution.html.j2": deconvolution,
    "subtypes.html.j2": subtypes,
    "clinical_models.html.j2": clinical_models,
}


def _without_timestamp(page: str) -> str:
    return re.sub(r"generated \d{4}-\d\d-\d\d \d\d:\d\d UTC", "generated", page)


def test_every_section_template_has_a_builder():
    assert SECTION_TEMPLATES == sorted(BUILDERS), "add a builder for each new section template"


@pytest.mark.parametrize("template", SECTION_TEMPLATES)
def test_section_renders_its_template_with_strict_undefined(template, request):
    section = BUILDERS[template](request)
    assert section.template == template
    assert report._environment().undefined is jinja2.StrictUndefined
    page = render_report([section], cohort="demo", title="demo", simulated=True)
    assert f'id="{section.id}"' in page and section.title in page
    # the section survives its JSON (what the report rule reads) unchanged
    path = request.getfixturevalue("tmp_path") / "section.json"
    report.write_section(section, path)
    again = render_report([report.read_section(path)], cohort="demo", title="demo", simulated=True)
    assert _without_timestamp(again) == _without_timestamp(page)


def test_a_template_variable_no_builder_gives_fails_the_render(tmp_path: Path, monkeypatch, request):
    """The check above can fail: a variable the context lacks is an error, not an empty string."""
    import shutil

    copy = tmp_path / "templates"
    shutil.copytree(report.TEMPLATES, copy)
    target = copy / "sections" / "cohort.html.j2"
    target.write_text(target.read_text() + "{{ not_in_the_context }}\n")
    monkeypatch.setattr(report, "TEMPLATES", copy)
    with pytest.raises(jinja2.UndefinedError, match="not_in_the_context"):
        render_report([cohort(request)], cohort="demo", title="demo", simulated=True)
