"""Ferroptosis subtypes of one cohort, end to end: consensus clustering (subtypes.py), then per subtype survival,
tumour-microenvironment, checkpoint and stemness differences, marker regulators (scanpy) and DE, and the report
section."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
from scipy import stats

from .plots import figure_uri
from .report import Section, table_html
from .subtypes import ConsensusResult, SubtypeSettings, TooFewTumours, choose_k, consensus_cluster, regulator_matrix
from .cox import cox_univariate
from .numerics import bh_fdr
from .survival import available_endpoints, endpoint_frame, logrank_test

import matplotlib.pyplot as plt

SECTION_ORDER = 62  # after survival (60), before the cross-cohort page (65)
# score categories of score_info.tsv compared between subtypes (the signatures stage writes them)
COMPARED_CATEGORIES = ("microenvironment", "immune cell", "immune response", "checkpoint", "stemness", "ferroptosis")
DIFFERENCE_COLUMNS = ["feature", "kind", "n", "statistic", "p", "fdr", "highest_in"]


def subtype_labels(classes: np.ndarray) -> np.ndarray:
    return np.array([f"S{c}" for c in classes], dtype=object)


@dataclass
class SubtypeOutcome:
    assignments: pd.DataFrame  # sample_id, subtype (chosen k), class_k<k> for every k tried
    k_stats: pd.DataFrame
    differences: pd.DataFrame  # DIFFERENCE_COLUMNS + median per subtype
    survival: pd.DataFrame  # endpoint, subtype, n, events, hr_vs_S1 ..., logrank_p
    markers: pd.DataFrame  # scanpy rank_genes_groups of the regulators
    de: dict[str, pd.DataFrame]  # comparison name -> DE table
    section: Section
    enrichment: dict[str, pd.DataFrame] = field(default_factory=dict)  # comparison name -> GSEA prerank table
    notes: list[str] = field(default_factory=list)


def group_differences(values: pd.DataFrame, subtype: pd.Series, kinds: dict[str, str]) -> pd.DataFrame:
    """Per column of `values` (tumours x features): Kruskal-Wallis across subtypes (Mann-Whitney's equivalent
    for two), BH-FDR over all features, the median per subtype and the subtype with the highest median."""
    groups = sorted(subtype.unique())
    rows = []
    for feature in values.columns:
        column = pd.to_numeric(values[feature], errors="coerce")
        parts = [column[subtype == g].dropna().to_numpy() for g in groups]
        medians = {f"median_{g}": float(np.median(p)) if len(p) else np.nan for g, p in zip(groups, parts)}
        usable = [p for p in parts if len(p)]
        if len(usable) >= 2 and len(np.unique(np.concatenate(usable))) > 1:
            statistic, p = stats.kruskal(*usable)
        else:
            statistic, p = np.nan, np.nan
        highest = max(medians, key=lambda key: -np.inf if np.isnan(medians[key]) else medians[key])
        rows.append(
            {
                "feature": feature,
                "kind": kinds.get(feature, ""),
                "n": int(sum(len(p) for p in parts)),
                "statistic": float(statistic),
                "p": float(p),
                "highest_in": highest.removeprefix("median_"),
                **medians,
            }
        )
    table = pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS[:4] + ["p", "highest_in"] + [f"median_{g}" for g in groups])
    table.insert(5, "fdr", bh_fdr(table["p"]) if len(table) else pd.Series(dtype=float))
    return table.sort_values("p", na_position="last").reset_index(drop=True)


def subtype_survival(
    obs: pd.DataFrame, subtype: pd.Series, endpoints: Sequence[str]
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[str]]:
    """Per endpoint: log-rank across subtypes, and the Cox HR of each subtype against S1; KM figures."""
    from .survival_figures import km_plot

    rows, figures, notes = [], [], []
    for endpoint in endpoints:
        frame, frame_notes = endpoint_frame(obs, endpoint)
        notes.extend(frame_notes)
        frame = frame.join(subtype.rename("subtype"), how="inner")
        if frame["event"].sum() == 0 or frame["subtype"].nunique() < 2:
            notes.append(
                f"{endpoint}: no events or one subtype only among the tumours with follow-up; no survival test"
            )
            continue
        test = logrank_test(frame["time"].to_numpy(), frame["event"].to_numpy(), frame["subtype"].to_numpy())
        reference = sorted(frame["subtype"].unique())[0]
        for group in sorted(frame["subtype"].unique()):
            member = frame["subtype"] == group
            row = {
                "endpoint": endpoint,
                "subtype": group,
                "n": int(member.sum()),
                "events": int(frame.loc[member, "event"].sum()),
                "hr_vs_" + reference: np.nan,
                "hr_lower": np.nan,
                "hr_upper": np.nan,
                "p_wald": np.nan,
                "logrank_chisq": test.chisq,
                "logrank_df": test.df,
                "logrank_p": test.p,
            }
            if group != reference:
                keep = frame["subtype"].isin([reference, group])
                indicator = pd.DataFrame({group: (frame.loc[keep, "subtype"] == group).astype(float).to_numpy()})
                cox = cox_univariate(
                    frame.loc[keep, "time"].to_numpy(), frame.loc[keep, "event"].to_numpy(), indicator
                ).iloc[0]
                row.update(
                    {
                        "hr_vs_" + reference: cox["hr"],
                        "hr_lower": cox["hr_lower"],
                        "hr_upper": cox["hr_upper"],
                        "p_wald": cox["p_wald"],
                    }
                )
            rows.append(row)
        figures.append(
            {
                "endpoint": endpoint,
                "p": test.p,
                "figure": km_plot(
                    frame["time"].to_numpy(),
                    frame["event"].to_numpy(),
                    frame["subtype"],
                    title=f"{endpoint} by ferroptosis subtype",
                    endpoint=endpoint,
                    hazard_ratio=False,
                ),
            }
        )
    return pd.DataFrame(rows), figures, notes


def marker_regulators(expression: pd.DataFrame, subtype: pd.Series) -> tuple[ad.AnnData, pd.DataFrame]:
    """scanpy rank_genes_groups (Wilcoxon, each subtype against the rest) on the tumours x regulators log2 values.

    scanpy's logfoldchanges assume log1p (natural log) data; on log2 values they are not fold changes, so the
    table keeps the Wilcoxon score and the BH-adjusted p only.
    """
    import scanpy as sc

    adata = ad.AnnData(
        # C order whatever the frame's (the job's comes transposed, in F order): numba compiles scanpy's rankdata
        # once per memory layout, and set-up compiles this one (compile_marker_ranking)
        np.ascontiguousarray(expression.to_numpy(dtype=np.float32)),
        obs=pd.DataFrame({"subtype": pd.Categorical(subtype)}, index=expression.index),
        var=pd.DataFrame(index=expression.columns.astype(str)),
    )
    sc.tl.rank_genes_groups(adata, groupby="subtype", method="wilcoxon", use_raw=False)
    table = sc.get.rank_genes_groups_df(adata, group=None)
    table = table.rename(
        columns={"group": "subtype", "names": "regulator", "scores": "wilcoxon_score", "pvals": "p", "pvals_adj": "fdr"}
    ).drop(columns=["logfoldchanges"], errors="ignore")
    return adata, table


def compile_marker_ranking() -> None:
    """Have numba compile, and cache beside scanpy's sources, the rank function `marker_regulators` reaches
    (scanpy's `rankdata`, `cache=True`, for the C-ordered float32 tumours x regulators matrix it is given):
    set-up runs this as it compiles the bytecode (Makefile). Otherwise the first subtypes job after an install
    compiles it, 7 s of CPU, in every cohort's job at once since none finds the cache the others are writing. A
    few samples make the same signature as a cohort's hundreds."""
    samples = [f"sample{i}" for i in range(8)]
    expression = pd.DataFrame(
        np.linspace(4.25, 9.75, 24).reshape(8, 3), index=samples, columns=["GPX4", "SLC7A11", "ACSL4"]
    )
    marker_regulators(expression, pd.Series(["S1", "S2"] * 4, index=samples))


def regulator_matrixplot(adata: ad.AnnData) -> str:
    """scanpy matrix plot of the mean regulator expression per subtype, scaled 0-1 per regulator (a dot plot's
    dot size, the share of samples with expression > 0, says nothing on bulk log2 values: always all)."""
    import scanpy as sc

    plot = sc.pl.matrixplot(
        adata,
        var_names=list(adata.var_names),
        groupby="subtype",
        standard_scale="var",
        return_fig=True,
        title="Ferroptosis regulators by subtype",
        colorbar_title="mean log2,\nscaled per regulator",
    )
    plot.make_figure()
    return figure_uri(plot.fig)


def regulator_pca_plot(adata: ad.AnnData) -> str:
    import scanpy as sc

    sc.pp.pca(adata, n_comps=min(10, adata.n_vars - 1, adata.n_obs - 1))
    figure = sc.pl.pca(adata, color="subtype", return_fig=True, title="Tumours on the regulators (PCA)")
    return figure_uri(figure)


def consensus_figures(result: ConsensusResult, chosen: int) -> dict[str, str]:
    """The CDF per k, the delta area and PAC against k, and the consensus heatmap at the chosen k."""
    fig, (left, middle) = plt.subplots(1, 2, figsize=(9.5, 3.8))
    for k in result.cdf.columns:
        left.step(result.cdf.index, result.cdf[k], where="post", label=f"k = {k}", lw=2 if k == chosen else 1)
    left.set_xlabel("consensus index")
    left.set_ylabel("CDF")
    left.set_title("Consensus CDF", fontsize=10)
    left.legend(fontsize=8)
    middle.plot(result.k_stats["k"], result.k_stats["delta_area"], "o-", label="delta area")
    middle.plot(result.k_stats["k"], result.k_stats["pac"], "s--", label="PAC")
    middle.axvline(chosen, color="#555", ls=":", lw=1)
    middle.set_xlabel("k")
    middle.set_xticks(list(result.k_stats["k"]))
    middle.set_title("Delta area and PAC (chosen k dotted)", fontsize=10)
    middle.legend(fontsize=8)
    fig.tight_layout()
    cdf = figure_uri(fig)

    classes = result.classes[chosen]
    order = np.lexsort((-result.consensus[chosen].mean(axis=1), classes))
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    image = ax.imshow(
        result.consensus[chosen][np.ix_(order, order)], cmap="Blues", vmin=0, vmax=1, interpolation="nearest"
    )
    edges = np.flatnonzero(np.diff(classes[order])) + 0.5
    for edge in edges:
        ax.axhline(edge, color="#c0392b", lw=0.8)
        ax.axvline(edge, color="#c0392b", lw=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"Consensus matrix, k = {chosen} (tumours ordered by subtype)", fontsize=10)
    fig.colorbar(image, ax=ax, label="consensus index", fraction=0.046)
    return {"cdf": cdf, "heatmap": figure_uri(fig)}


def between_subtype_de(
    adata: ad.AnnData, subtype: pd.Series, de_block: dict[str, Any], *, cohort: str, n_cpus: int = 1
) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]]]:
    """DE of each subtype against the other tumours (two subtypes: S2 vs S1) with de.py's method for the assay
    (DESeq2 on counts, limma on log2 arrays)."""
    from .de import Comparison, DESettings, differential_expression

    settings = DESettings.from_config(de_block)
    # the cohort's layers, var and uns as they are (no copy: `adata[tumours].copy()` copied every layer, 400 MB at
    # TCGA size); its obs only the compared column, set for the clustered tumours and missing for the other samples,
    # so that the design takes the tumours in the cohort's order, as it took them from the copy
    column = "subtype_comparison"
    compared = ad.AnnData(
        obs=pd.DataFrame(index=adata.obs_names), var=adata.var, uns=adata.uns, layers=dict(adata.layers)
    )
    groups = sorted(subtype.unique())
    pairs = [(groups[1], groups[0])] if len(groups) == 2 else [(g, "rest") for g in groups]
    tables, summaries = {}, []
    for test, reference in pairs:
        labels = np.where(subtype.to_numpy() == test, test, subtype.to_numpy() if reference != "rest" else "rest")
        compared.obs[column] = pd.Series(labels, index=subtype.index, dtype=object).reindex(adata.obs_names)
        comparison = Comparison(name=f"{test}_vs_{reference}", column=column, test=test, reference=reference)
        result = differential_expression(compared, comparison, settings, cohort=cohort, n_cpus=n_cpus)
        tables[comparison.name] = result.table
        summaries.append(
            {
                "comparison": comparison.name,
                **{
                    k: v
                    for k, v in result.summary(settings.alpha).items()
                    if k in ("method", "genes_tested", "significant", "up", "down")
                },
            }
        )
    return tables, summaries


def between_subtype_enrichment(
    de_tables: Mapping[str, pd.DataFrame], sets: Mapping[str, Any], *, permutations: int, seed: int, min_size: int = 5
) -> dict[str, pd.DataFrame]:
    """GSEA prerank (gseapy, as the enrichment stage runs it) of each between-subtype DE table, ranked by its
    Wald/moderated t statistic, against `sets` (the signature catalogue's gene lists: offline, always there)."""
    from .enrichment import ranking_from_de, run_prerank

    tables = {}
    for name, table in de_tables.items():
        result, _ = run_prerank(ranking_from_de(table), sets, permutations=permutations, seed=seed, min_size=min_size)
        result["leading_edge"] = result["leading_edge"].map(
            lambda genes: genes if isinstance(genes, str) else ";".join(genes)
        )
        tables[name] = result
    return tables


def unclustered_section(label: str, reason: str) -> Section:
    """The section of a cohort that cannot be clustered: the reason, nothing else."""
    return Section(
        id="subtypes",
        title="Ferroptosis subtypes",
        template="subtypes.html.j2",
        order=SECTION_ORDER,
        context={"label": label, "clustered": False, "reason": reason},
        warnings=[reason],
        summary=[f"Ferroptosis subtypes: not clustered ({reason.split(';')[0]})"],
    )


def subtype_layers(settings: SubtypeSettings, de_block: Mapping[str, Any] | None) -> tuple[list[str], list[str]]:
    """The cohort layers the subtypes job reads (needed, optional): the regulators, the checkpoint genes and limma's
    DE use log2; DESeq2 the counts, which an array cohort has not. X and tpm are not used."""
    return ["log2"], ["counts"] if settings.de and de_block is not None else []


def cohort_subtypes(
    adata: ad.AnnData | str | os.PathLike[str],
    scores: pd.DataFrame,
    info: pd.DataFrame,
    settings: SubtypeSettings,
    *,
    regulators: Sequence[str],
    checkpoint_genes: Sequence[str],
    endpoints: Sequence[str] | str = "all",
    de_block: dict[str, Any] | None = None,
    enrichment_sets: Mapping[str, Any] | None = None,
    enrichment_permutations: int = 1000,
    enrichment_min_size: int = 5,
    cohort: str = "cohort",
    label: str = "",
    n_cpus: int = 1,
) -> SubtypeOutcome:
    """Subtypes of one harmonised cohort (one tumour per patient). Raises TooFewTumours when the cohort has
    fewer than `settings.min_tumours` tumours or too few regulators; the caller decides whether that stops.

    `adata` is the cohort, or the path of its `cohort.h5ad`: then only the layers used are read (`subtype_layers`)
    and they are let go once the DE has run, before GSEA (gseapy's prerank holds ~40 bytes per gene and
    permutation: 1.5 GB at TCGA size)."""
    from .endpoints import requested_endpoints
    from .risk_models import log2_expression
    from .survival_stage import tumour_samples

    if not isinstance(adata, ad.AnnData):
        from .cohort_file import read_cohort

        layers, optional = subtype_layers(settings, de_block)
        adata = read_cohort(adata, layers, optional=optional)
    label = label or cohort
    tumours, notes = tumour_samples(adata.obs)
    if len(tumours) < settings.min_tumours:
        raise TooFewTumours(
            f"cohort {cohort}: {len(tumours)} tumour sample(s), consensus clustering needs >= "
            f"{settings.min_tumours} (subtypes.min_tumours)"
        )
    expression = log2_expression(adata, list(regulators)).loc[tumours]
    data, used = regulator_matrix(
        expression, regulators, min_regulators=settings.min_regulators, where=f"cohort {cohort}"
    )
    if used["missing"]:
        notes.append(f"{len(used['missing'])} regulator(s) not measured: {', '.join(used['missing'])}")
    if used["constant"]:
        notes.append(
            f"{len(used['constant'])} regulator(s) constant across tumours, left out: {', '.join(used['constant'])}"
        )
    result = consensus_cluster(
        data,
        k_min=settings.k_min,
        k_max=settings.k_max,
        resamples=settings.resamples,
        item_fraction=settings.item_fraction,
        feature_fraction=settings.feature_fraction,
        algorithm=settings.algorithm,
        seed=settings.seed,
        pac_window=settings.pac_window,
    )
    k, why = choose_k(
        result.k_stats,
        settings.choose_k,
        min_subtype_size=settings.min_subtype_size,
        delta_area_min=settings.delta_area_min,
    )
    subtype = pd.Series(subtype_labels(result.classes[k]), index=data.index, name="subtype")
    assignments = pd.DataFrame(
        {
            "sample_id": data.index,
            "subtype": subtype.to_numpy(),
            **{f"class_k{kk}": result.classes[kk] for kk in result.classes},
        }
    )

    obs = adata.obs.loc[tumours]
    wanted = requested_endpoints(endpoints, obs)
    present, endpoint_notes = available_endpoints(obs, wanted)
    notes.extend(endpoint_notes)
    survival, km_figures, survival_notes = subtype_survival(obs, subtype, present)
    notes.extend(survival_notes)

    compared = [
        s
        for s in scores.columns
        if s in info.index
        and info.loc[s, "category"] in COMPARED_CATEGORIES
        and not str(s).startswith("ferroptosis_core_regulators__")
    ]
    kinds = {s: str(info.loc[s, "category"]) for s in compared}
    features = scores.reindex(data.index)[compared]
    checkpoints = [g for g in checkpoint_genes if g in adata.var_names]
    notes.extend(f"checkpoint gene {g}: not measured" for g in checkpoint_genes if g not in adata.var_names)
    if checkpoints:
        genes = log2_expression(adata, checkpoints).loc[data.index].add_prefix("gene__")
        features = features.join(genes)
        kinds.update(dict.fromkeys(genes.columns, "checkpoint gene (log2)"))
    differences = group_differences(features, subtype, kinds)

    de_tables, de_summaries = ({}, [])
    if settings.de and de_block is not None:
        de_tables, de_summaries = between_subtype_de(adata, subtype, de_block, cohort=cohort, n_cpus=n_cpus)
    # nothing below needs the expression layers: let them go (read here from a path, this is the last reference;
    # AnnData and PyDESeq2's data set are reference cycles, freed by the collector only)
    del adata
    gc.collect()
    enrichment = (
        between_subtype_enrichment(
            de_tables,
            enrichment_sets,
            permutations=enrichment_permutations,
            seed=settings.seed,
            min_size=enrichment_min_size,
        )
        if enrichment_sets
        else {}
    )
    # scanpy after the DE and GSEA: it loads numba's LLVM (~150 MB at TCGA size) that gseapy's peak then need not carry
    marker_data, markers = marker_regulators(expression[data.columns], subtype)
    matrixplot = regulator_matrixplot(marker_data)
    pca = regulator_pca_plot(marker_data)

    figures = consensus_figures(result, k)
    sizes = subtype.value_counts().sort_index()
    size_text = ", ".join(f"{g} {n}" for g, n in sizes.items())
    summary = [f"Ferroptosis subtypes: {k} ({size_text}) from {used['used']} regulators; {why}"]
    for endpoint in survival["endpoint"].unique() if len(survival) else []:
        p = survival.loc[survival["endpoint"] == endpoint, "logrank_p"].iloc[0]
        summary.append(
            f"Subtypes differ in {endpoint}: log-rank p = {p:.2g}"
            if p < 0.05
            else f"Subtypes do not differ clearly in {endpoint} (log-rank p = {p:.2g})"
        )
    significant = differences[differences["fdr"] < 0.05]
    if len(significant):
        summary.append(
            f"{len(significant)} of {len(differences)} immune, checkpoint and stemness features differ "
            f"between subtypes (FDR < 0.05), strongest: {', '.join(significant['feature'].head(3))}"
        )
    context = {
        "label": label,
        "clustered": True,
        "k": k,
        "why": why,
        "sizes": size_text,
        "regulators": used,
        "settings": result.settings,
        "k_stats": table_html(result.k_stats),
        "figures": figures,
        "km": km_figures,
        "survival_table": table_html(survival) if len(survival) else "",
        "differences": table_html(differences, max_rows=60),
        "markers": table_html(markers, max_rows=80),
        "matrixplot": matrixplot,
        "pca": pca,
        "de": de_summaries,
        "notes": notes,
        "de_tables": {name: table_html(t.sort_values("pvalue").head(20)) for name, t in de_tables.items()},
        "enrichment": {name: table_html(t, max_rows=50) for name, t in enrichment.items()},
    }
    section = Section(
        id="subtypes",
        title="Ferroptosis subtypes",
        template="subtypes.html.j2",
        order=SECTION_ORDER,
        context=context,
        warnings=[],
        summary=summary,
    )
    return SubtypeOutcome(
        assignments=assignments,
        k_stats=result.k_stats,
        differences=differences,
        survival=survival,
        markers=markers,
        de=de_tables,
        enrichment=enrichment,
        section=section,
        notes=notes,
    )


ASSIGNMENT_COLUMNS = ["sample_id", "subtype"]
K_STAT_COLUMNS = ["k", "cdf_area", "delta_area", "pac", "smallest_cluster"]


def write_subtypes(
    adata: ad.AnnData | str | os.PathLike[str],
    scores: pd.DataFrame,
    info: pd.DataFrame,
    settings: SubtypeSettings,
    paths: Mapping[str, str],
    **options: Any,
) -> Section:
    """Run cohort_subtypes on the cohort (or the path of its cohort.h5ad) and write its tables to `paths`
    (assignments, k_stats, differences, survival, markers, de folder with the DE and GSEA tables); returns the
    report section. A cohort too small to cluster gets header-only tables and a section that says why
    (subtypes.on_small_cohort: note), or stops with the reason (error)."""
    from .files import write_tsv

    paths = dict(paths)
    try:
        outcome = cohort_subtypes(adata, scores, info, settings, **options)
    except TooFewTumours as error:
        if settings.on_small_cohort == "error":
            raise
        outcome = None
        reason = f"{error}; set subtypes.on_small_cohort: error to make this stop the run"
    tables = {
        "assignments": outcome.assignments if outcome else pd.DataFrame(columns=ASSIGNMENT_COLUMNS),
        "k_stats": outcome.k_stats if outcome else pd.DataFrame(columns=K_STAT_COLUMNS),
        "differences": outcome.differences if outcome else pd.DataFrame(columns=DIFFERENCE_COLUMNS),
        "survival": outcome.survival if outcome else pd.DataFrame(columns=["endpoint", "subtype", "n", "events"]),
        "markers": outcome.markers
        if outcome
        else pd.DataFrame(columns=["subtype", "regulator", "wilcoxon_score", "p", "fdr"]),
    }
    for name, table in tables.items():
        write_tsv(table, paths[name])
    de_folder = Path(paths["de"])
    de_folder.mkdir(parents=True, exist_ok=True)
    for name, table in (outcome.de if outcome else {}).items():
        write_tsv(table, de_folder / f"de_{name}.tsv")
    for name, table in (outcome.enrichment if outcome else {}).items():
        write_tsv(table, de_folder / f"gsea_{name}.tsv")
    if outcome is None:
        return unclustered_section(options.get("label") or options.get("cohort", "cohort"), reason)
    return outcome.section
