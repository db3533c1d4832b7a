"""Ferroptosis subtypes: consensus clustering against R ConsensusClusterPlus, planted recovery, bad inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from conftest import REPO
from ferrostem.errors import ConfigError, InputFormatError
from ferrostem.subtypes import (
    SubtypeSettings,
    TooFewTumours,
    cdf_area,
    choose_k,
    consensus_cluster,
    final_classes,
    regulator_matrix,
)

FIXTURE = Path(__file__).parent / "data" / "subtypes"  # written by make_consensus_fixture.R beside it


def r_reference() -> tuple[pd.DataFrame, dict[int, np.ndarray], pd.DataFrame, pd.DataFrame]:
    data = pd.read_csv(FIXTURE / "consensus_input.tsv", sep="\t", index_col=0).T  # tumours x genes
    matrices = {
        k: pd.read_csv(FIXTURE / f"consensus_matrix_k{k}.tsv", sep="\t", index_col=0)
        .loc[data.index, data.index]
        .to_numpy()
        for k in range(2, 6)
    }
    classes = pd.read_csv(FIXTURE / "consensus_class.tsv", sep="\t").set_index("sample").loc[data.index]
    area = pd.read_csv(FIXTURE / "consensus_area.tsv", sep="\t").set_index("k")
    return data, matrices, classes, area


def test_cdf_area_delta_area_and_final_classes_equal_consensusclusterplus_on_its_matrices():
    _, matrices, classes, area = r_reference()
    for k, matrix in matrices.items():
        assert cdf_area(matrix) == pytest.approx(area.loc[k, "cdf_area"], abs=1e-12), k
        # R's consensusClass: hclust(1 - M, average), cutree(k), numbered by first member
        assert (final_classes(matrix, k) == classes[f"k{k}"].to_numpy()).all(), k


def test_consensus_clustering_agrees_with_consensusclusterplus():
    data, matrices, classes, area = r_reference()
    result = consensus_cluster(data, k_min=2, k_max=5, resamples=2000, item_fraction=0.8, seed=5)
    stats = result.k_stats.set_index("k")
    for k, matrix in matrices.items():
        difference = np.abs(result.consensus[k] - matrix)
        # Monte Carlo error of 2000 resamples (different random streams in R and numpy)
        assert difference.mean() < 0.01 and difference.max() < 0.08, k
        assert stats.loc[k, "cdf_area"] == pytest.approx(area.loc[k, "cdf_area"], abs=0.003), k
        assert stats.loc[k, "delta_area"] == pytest.approx(area.loc[k, "delta_area"], abs=0.01), k
    for k in (2, 3):  # the stable partitions (3 planted groups) are the same tumour for tumour
        assert adjusted_rand_score(result.classes[k], classes[f"k{k}"]) == 1.0, k
    assert choose_k(result.k_stats, "delta_area", delta_area_min=0.1)[0] == 3
    assert choose_k(result.k_stats, "pac", min_subtype_size=5)[0] == 3


def planted(seed: int, sizes=(45, 35), genes: int = 19, shift: float = 1.2) -> tuple[pd.DataFrame, np.ndarray]:
    """Tumours x regulators: each group raises its own half of the genes by `shift` SD over unit noise, plus
    a shared continuous factor that every gene loads on (as the demo's ferroptosis-resistance factor)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    pattern = np.zeros((len(sizes), genes))
    for g in range(len(sizes)):
        pattern[g, g :: len(sizes)] = shift
    factor = rng.standard_normal(len(truth))[:, None] * rng.uniform(0.2, 0.6, size=genes)[None, :]
    values = pattern[truth] + factor + rng.standard_normal((len(truth), genes))
    frame = pd.DataFrame(
        values, index=[f"T{i:03d}" for i in range(len(truth))], columns=[f"G{j:02d}" for j in range(genes)]
    )
    return frame - frame.median(), truth


@pytest.mark.parametrize("sizes, shift", [((45, 35), 1.6), ((30, 30, 25), 1.6)])
def test_planted_subtypes_are_recovered(sizes, shift):
    data, truth = planted(7, sizes, shift=shift)
    result = consensus_cluster(data, k_min=2, k_max=6, resamples=300, seed=1)
    for rule in ("pac", "delta_area"):
        assert choose_k(result.k_stats, rule, min_subtype_size=5)[0] == len(sizes), rule
    assert adjusted_rand_score(truth, result.classes[len(sizes)]) >= 0.95


def test_kmeans_base_clusterer_recovers_planted_subtypes():
    data, truth = planted(8)
    result = consensus_cluster(data, k_min=2, k_max=4, resamples=100, algorithm="km", seed=1)
    assert adjusted_rand_score(truth, result.classes[2]) >= 0.9


def test_consensus_clustering_is_deterministic_for_a_seed():
    data, _ = planted(9)
    first = consensus_cluster(data, k_max=3, resamples=50, seed=4)
    second = consensus_cluster(data, k_max=3, resamples=50, seed=4)
    assert all(np.array_equal(first.consensus[k], second.consensus[k]) for k in (2, 3))


def test_too_small_cohort_and_too_few_regulators_say_why():
    data, _ = planted(1, sizes=(4, 3))
    with pytest.raises(TooFewTumours, match=r"7 tumours x item_fraction 0.8 = 5 per resample, not more than k_max = 6"):
        consensus_cluster(data, k_max=6, resamples=10)
    expression = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 4)), columns=["GPX4", "ACSL4", "TFRC", "FTL"])
    expression["KEAP1"] = 1.0
    with pytest.raises(TooFewTumours, match=r"4 of 6 ferroptosis regulators .* Missing: SLC7A11; constant: KEAP1"):
        regulator_matrix(expression, ["GPX4", "ACSL4", "TFRC", "FTL", "KEAP1", "SLC7A11"], min_regulators=5)


def test_wrong_inputs_are_refused_by_name():
    data, _ = planted(2)
    data.iloc[3, 2] = np.nan
    with pytest.raises(InputFormatError, match="G02"):
        consensus_cluster(data, resamples=5)
    with pytest.raises(ConfigError, match=r"subtypes.algorithm: 'pam' is not one of \['hc', 'km'\]"):
        SubtypeSettings.from_config({"algorithm": "pam"})
    with pytest.raises(ConfigError, match=r"subtypes: Additional properties are not allowed \('kmax' was unexpected\)"):
        SubtypeSettings.from_config({"kmax": 4})
    with pytest.raises(ConfigError, match="choose_k 9 is outside"):
        SubtypeSettings.from_config({"choose_k": 9})
    from ferrostem.risk_models import resolve_universe

    with pytest.raises(ConfigError, match=r"subtypes.regulators.catalogue: no signature 'ferroptosis_regulatorz'"):
        resolve_universe(
            {"catalogue": ["ferroptosis_regulatorz"]},
            Path(__file__).parents[1] / "resources" / "signatures",
            key="subtypes.regulators",
        )
    stats = pd.DataFrame(
        {"k": [2, 3], "cdf_area": [0.5, 0.6], "delta_area": [0.5, 0.2], "pac": [0.1, 0.2], "smallest_cluster": [2, 1]}
    )
    with pytest.raises(TooFewTumours, match="min_subtype_size"):
        choose_k(stats, "pac", min_subtype_size=5)


def core_regulators() -> list[str]:
    from ferrostem.risk_models import resolve_universe

    return resolve_universe(
        {"catalogue": ["ferroptosis_core_regulators"]}, Path(__file__).parents[1] / "resources" / "signatures"
    )


def run_cohort(adata, de_block=None, *, source=None, **settings):
    """cohort_subtypes of `source` (default: `adata`; or the path of its cohort.h5ad)."""
    from ferrostem.subtype_report import cohort_subtypes

    regulators = core_regulators()
    info = pd.DataFrame({"category": ["checkpoint"]}, index=pd.Index(["checkpoint_score"], name="score"))
    scores = pd.DataFrame(
        {"checkpoint_score": np.asarray(adata[:, "CD274"].layers["log2"]).ravel()}, index=adata.obs_names
    )
    return cohort_subtypes(
        adata if source is None else source,
        scores,
        info,
        SubtypeSettings.from_config({"resamples": 200, "de": False, **settings}),
        regulators=regulators,
        checkpoint_genes=["CD274", "PDCD1"],
        de_block=de_block,
        cohort="demo",
        label="Demo",
    )


@pytest.mark.parametrize("cohort", ["rnaseq", "array"])
def test_planted_demo_subtypes_are_recovered_with_their_survival_difference(demo_dir, demo_rnaseq, demo_array, cohort):
    import json

    from ferrostem.report import render_report

    adata = demo_rnaseq if cohort == "rnaseq" else demo_array
    truth = pd.read_csv(demo_dir / "truth" / f"subtypes_{cohort}.tsv", sep="\t").set_index("sample_id")
    planted = json.loads((demo_dir / "truth" / "truth.json").read_text())["ferroptosis_subtypes"]
    outcome = run_cohort(adata)
    found = outcome.assignments.set_index("sample_id")["subtype"]
    assert found.nunique() == 2
    assert adjusted_rand_score(truth.loc[found.index, "ferroptosis_subtype"], found) >= 0.9
    # the subtype whose tumours are mostly S_b carries S_b's regulators high and the worse survival
    s_b = pd.crosstab(found, truth.loc[found.index, "ferroptosis_subtype"])["S_b"].idxmax()
    markers = outcome.markers[(outcome.markers["subtype"] == s_b) & (outcome.markers["fdr"] < 0.05)]
    up = set(markers.loc[markers["wilcoxon_score"] > 0, "regulator"])
    assert set(planted["genes_up"]["S_b"]) <= up
    # S_b is planted more ferroptosis-resistant (P(S_b | F) = Phi(1.5 F)) and so survives worse through F's HR;
    # with 100 tumours the RNA-seq cohort shows it (planted labels: log-rank p = 0.008), the 80 array tumours only
    # in direction (planted labels: p = 0.12)
    survival = outcome.survival.set_index("subtype")
    hazard = survival["hr_vs_S1"].dropna().iloc[0]  # S2 against S1
    assert (hazard > 1) == (s_b == "S2")
    if cohort == "rnaseq":
        assert survival["logrank_p"].iloc[0] < 0.05
    page = render_report([outcome.section], cohort="demo", title="demo", simulated=True)
    assert "Ferroptosis subtypes" in page and "k = 2" in page


def test_a_cohort_too_small_to_cluster_gets_a_note_or_an_error(tmp_path, demo_array):
    from ferrostem.subtype_report import write_subtypes

    small = demo_array[demo_array.obs_names[:25]].copy()
    paths = {
        name: str(tmp_path / f"{name}.tsv") for name in ("assignments", "k_stats", "differences", "survival", "markers")
    }
    paths["de"] = str(tmp_path / "de")
    info = pd.DataFrame({"category": []}, index=pd.Index([], name="score"))
    scores = pd.DataFrame(index=small.obs_names)
    options = {"regulators": ["GPX4", "SLC7A11"], "checkpoint_genes": [], "cohort": "small", "label": "Small"}
    section = write_subtypes(small, scores, info, SubtypeSettings.from_config({}), paths, **options)
    assert not section.context["clustered"]
    assert "tumour sample(s), consensus clustering needs >= 30 (subtypes.min_tumours)" in section.warnings[0]
    assert list(pd.read_csv(paths["assignments"], sep="\t").columns) == ["sample_id", "subtype"]
    with pytest.raises(TooFewTumours, match="needs >= 30"):
        write_subtypes(small, scores, info, SubtypeSettings.from_config({"on_small_cohort": "error"}), paths, **options)


def test_between_subtype_enrichment_finds_the_planted_regulator_sets(demo_dir, demo_array):
    """GSEA of the S2-vs-S1 DE: the set of the regulators each planted subtype raises leads on its side."""
    from ferrostem.demo import FERROPTOSIS_SUBTYPE_GENES
    from ferrostem.genesets import GeneSet

    rng = np.random.default_rng(4)
    others = [g for g in demo_array.var_names if g not in sum(FERROPTOSIS_SUBTYPE_GENES.values(), [])]
    sets = {
        f"planted_{name}": GeneSet(f"planted_{name}", tuple(genes)) for name, genes in FERROPTOSIS_SUBTYPE_GENES.items()
    }
    sets |= {f"random_{i}": GeneSet(f"random_{i}", tuple(rng.choice(others, 15, replace=False))) for i in range(8)}
    from ferrostem.config import with_schema_defaults

    outcome = run_cohort(demo_array, de_block=with_schema_defaults({}, "de"), de=True)
    found = outcome.assignments.set_index("sample_id")["subtype"]
    truth = pd.read_csv(demo_dir / "truth" / "subtypes_array.tsv", sep="\t").set_index("sample_id")
    s_b = pd.crosstab(found, truth.loc[found.index, "ferroptosis_subtype"])["S_b"].idxmax()
    from ferrostem.subtype_report import between_subtype_enrichment

    ((name, table),) = between_subtype_enrichment(outcome.de, sets, permutations=200, seed=1, min_size=4).items()
    assert name == "S2_vs_S1"
    table = table.set_index("set")
    sign_b = 1 if s_b == "S2" else -1  # positive NES = higher in S2
    assert sign_b * table.at["planted_S_b", "NES"] > 0 and table.at["planted_S_b", "fdr"] < 0.05
    assert -sign_b * table.at["planted_S_a", "NES"] > 0 and table.at["planted_S_a", "fdr"] < 0.05
    random = table[table.index.str.startswith("random_")]
    assert (random["fdr"] > 0.05).mean() >= 0.75  # no planted signal: mostly not significant


def test_between_subtype_de_takes_the_tumours_from_the_whole_cohort_as_from_a_copy_of_them(demo_rnaseq):
    """The DE runs on the cohort itself (no copy of its layers), the compared column missing for the normals: the
    tables equal those of the former `adata[tumours].copy()`, also for three subtypes (each against the rest)."""
    from ferrostem.config import with_schema_defaults
    from ferrostem.de import Comparison, DESettings, differential_expression
    from ferrostem.subtype_report import between_subtype_de

    cohort = demo_rnaseq[:, demo_rnaseq.var_names[:1500]].copy()
    tumours = cohort.obs_names[cohort.obs["tissue"].astype(str) == "tumor"]
    assert len(tumours) < cohort.n_obs  # normals present: they must stay out
    subtype = pd.Series([f"S{1 + i % 3}" for i in range(len(tumours))], index=tumours, name="subtype")
    de_block = with_schema_defaults({}, "de")
    tables, summaries = between_subtype_de(cohort, subtype, de_block, cohort="demo")
    assert list(tables) == ["S1_vs_rest", "S2_vs_rest", "S3_vs_rest"]
    copy = cohort[tumours].copy()
    for test in ("S1", "S2", "S3"):
        copy.obs["subtype_comparison"] = np.where(subtype.to_numpy() == test, test, "rest")
        comparison = Comparison(f"{test}_vs_rest", "subtype_comparison", test, "rest")
        expected = differential_expression(copy, comparison, DESettings.from_config(de_block), cohort="demo")
        pd.testing.assert_frame_equal(tables[f"{test}_vs_rest"], expected.table)
    assert [s["genes_tested"] for s in summaries] == [len(t) for t in tables.values()]


def test_a_cohort_path_reads_only_the_layers_used_and_gives_the_same_subtypes(tmp_path, demo_rnaseq, monkeypatch):
    from ferrostem import cohort_file
    from ferrostem.config import with_schema_defaults

    genes = demo_rnaseq.var_names[:1500].union(core_regulators() + ["CD274", "PDCD1"], sort=False)
    cohort = demo_rnaseq[:, genes.intersection(demo_rnaseq.var_names, sort=False)].copy()
    path = tmp_path / "cohort.h5ad"
    cohort.write_h5ad(path)
    asked = []
    read = cohort_file.read_cohort
    monkeypatch.setattr(
        cohort_file, "read_cohort", lambda *args, **kwargs: asked.append((args[1:], kwargs)) or read(*args, **kwargs)
    )
    de_block = with_schema_defaults({}, "de")
    from_path = run_cohort(cohort, de_block=de_block, source=path, de=True)
    assert asked == [((["log2"],), {"optional": ["counts"]})]
    from_memory = run_cohort(cohort, de_block=de_block, de=True)
    pd.testing.assert_frame_equal(from_path.assignments, from_memory.assignments)
    pd.testing.assert_frame_equal(from_path.differences, from_memory.differences)
    pd.testing.assert_frame_equal(from_path.de["S2_vs_S1"], from_memory.de["S2_vs_S1"])


MARKER_JOB = """
import numpy as np, pandas as pd
from ferrostem.subtype_report import marker_regulators
rng = np.random.default_rng(1)
samples = [f"TCGA-{i:04d}" for i in range(150)]
# genes x samples transposed, as the job's log2 frame comes: its values in F order
expression = pd.DataFrame(rng.normal(8, 2, size=(24, 150)), index=[f"G{j}" for j in range(24)], columns=samples).T
assert expression.to_numpy().flags.f_contiguous
subtype = pd.Series(rng.choice(["S1", "S2", "S3"], size=150), index=samples)
marker_regulators(expression, subtype)
"""


def test_set_up_compiles_what_the_subtypes_job_runs(tmp_path):
    """`compile_marker_ranking` (run by the Makefile's set-up) leaves numba's cache holding the machine code that
    marker_regulators needs on a cohort's shape: the job then compiles and writes nothing more."""
    cache = tmp_path / "numba"
    env = {"NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}

    def run(code: str) -> dict[str, int]:
        result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        return {path.name: path.stat().st_mtime_ns for path in cache.rglob("*.nbc")}

    compiled = run("from ferrostem.subtype_report import compile_marker_ranking; compile_marker_ranking()")
    assert len(compiled) == 1 and "rankdata" in next(iter(compiled)), compiled
    assert run(MARKER_JOB) == compiled
