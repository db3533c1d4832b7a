"""Gene-set enrichment of a DE result: GSEA prerank (gseapy) and hypergeometric over-representation.

Everything is offline: gseapy is only ever given gene sets as a dict, never a library name, so it cannot
reach the Enrichr server (a library name would make `gseapy.get_library` download it). Collections are
pluggable (`CollectionSpec`): a GMT in the repository, a locked resource (MSigDB GMT, WikiPathways WP4313
data nodes, FerrDb V2 CSVs), or gene lists generated from the signature catalogue.
GSEA: Subramanian et al., PNAS 2005; prerank as implemented by gseapy (Fang et al., Bioinformatics 2023).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import settings_from_block
from .errors import ConfigError, InputFormatError
from .genesets import (
    FERRDB_CATEGORIES,
    GeneSet,
    filter_sets,
    read_ferrdb,
    read_gmt,
    read_wp4313_datanodes,
    stemness_subset,
)
from .numerics import bh_fdr
from .signatures import catalogue_sets

log = logging.getLogger(__name__)

GSEA_COLUMNS = ["collection", "set", "size", "ES", "NES", "pvalue", "fdr", "fwer", "leading_edge"]
ORA_COLUMNS = [
    "collection",
    "set",
    "direction",
    "overlap",
    "set_size",
    "list_size",
    "universe",
    "fold_enrichment",
    "pvalue",
    "padj",
    "genes",
]


@dataclass
class EnrichmentSettings:
    """Top-level `enrichment:` config block (collections are handled by `CollectionSpec`)."""

    min_size: int = 5
    max_size: int = 1000
    permutations: int = 1000
    seed: int = 20261122
    ora: bool = True
    ora_min_abs_log2fc: float = 0.0
    running_score_plots: int = (
        6  # top sets by |NES| that get a running-score plot (plus every ferroptosis/stemness set)
    )

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None) -> EnrichmentSettings:
        return settings_from_block(cls, values, "enrichment", ignore=("collections", "user_gmts"))


@dataclass
class CollectionSpec:
    """One collection: exactly one of `gmt` (path), `resource` (lock ids) or `catalogue` (folder)."""

    name: str
    theme: str = "other"  # ferroptosis | stemness | hallmark | other: for grouping and running-score plots
    enabled: bool = True
    gmt: str | None = None
    resource: list[str] = field(default_factory=list)
    select: str | None = None  # 'stemness': the stemness subset of MSigDB C2
    catalogue: str | None = None
    how_to_enable: str = ""

    @classmethod
    def from_config(cls, name: str, values: Mapping[str, Any]) -> CollectionSpec:
        values = dict(values)
        resource = values.pop("resource", [])
        spec = cls(name=name, resource=[resource] if isinstance(resource, str) else list(resource), **values)
        sources = sum(bool(x) for x in (spec.gmt, spec.resource, spec.catalogue))
        if sources != 1:
            raise ConfigError(f"enrichment.collections.{name}: give exactly one of gmt, resource or catalogue")
        if spec.select not in (None, "stemness"):
            raise ConfigError(f"enrichment.collections.{name}.select = {spec.select!r}: only 'stemness' is known")
        return spec


def collection_resources(collections: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """The enabled resource-backed collections of `enrichment.collections`: name -> locked resource ids."""
    specs = [CollectionSpec.from_config(name, values) for name, values in collections.items()]
    return {spec.name: spec.resource for spec in specs if spec.resource and spec.enabled}


def load_collection(
    spec: CollectionSpec, files: Sequence[str | os.PathLike[str]] = ()
) -> tuple[dict[str, GeneSet], list[str]]:
    """Read a collection's sets; `files` are the resource paths in the order of `spec.resource`."""
    notes: list[str] = []
    if spec.gmt:
        sets = read_gmt(spec.gmt, spec.name)
    elif spec.catalogue:
        sets, notes = catalogue_sets(spec.catalogue, spec.name)
    else:
        if len(files) != len(spec.resource):
            raise ConfigError(
                f"enrichment.collections.{spec.name}: {len(spec.resource)} resources but {len(files)} files"
            )
        sets = {}
        for resource_id, path in zip(spec.resource, files):
            if resource_id.startswith("ferrdb_v2_"):
                category = resource_id.removeprefix("ferrdb_v2_")
                if category not in FERRDB_CATEGORIES:
                    raise ConfigError(f"unknown FerrDb resource {resource_id!r}")
                gene_set, report = read_ferrdb(path, category)
                sets[gene_set.name] = gene_set
                notes.append(
                    f"{gene_set.name}: {report.rows} rows; removed {report.non_human} non-human, "
                    f"{report.not_validated} not validated, {report.no_hgnc_symbol} without HGNC symbol, "
                    f"{report.duplicate_symbols} duplicates; {report.genes} genes"
                )
            elif resource_id == "wikipathways_wp4313":
                gene_set = read_wp4313_datanodes(path)
                sets[gene_set.name] = gene_set
            else:
                sets.update(read_gmt(path, spec.name))
        if spec.select == "stemness":
            sets = stemness_subset(sets)
    sets = {name: GeneSet(s.name, s.genes, s.description, spec.name) for name, s in sets.items()}
    return sets, notes


def ranking_from_de(table: pd.DataFrame, statistic: str = "stat") -> pd.Series:
    """The prerank input: the DE statistic per gene, NaN dropped, ties broken by symbol for reproducibility."""
    if statistic not in table.columns:
        raise InputFormatError(f"DE table has no {statistic!r} column to rank by")
    ranking = table.set_index("symbol")[statistic].astype(float).dropna()
    ranking = ranking[~ranking.index.duplicated()]
    order = np.lexsort((ranking.index.to_numpy(), -ranking.to_numpy()))
    return ranking.iloc[order]


def run_prerank(
    ranking: pd.Series,
    sets: Mapping[str, GeneSet],
    *,
    permutations: int = 1000,
    seed: int = 0,
    threads: int = 1,
    min_size: int = 5,
    max_size: int = 1000,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """gseapy prerank with gene sets passed as a dict (no network). Returns the table and per-set curves."""
    import gseapy

    if not sets:
        return pd.DataFrame(columns=GSEA_COLUMNS), {}
    gene_sets = {name: list(s.genes) for name, s in sets.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = gseapy.prerank(
            rnk=ranking,
            gene_sets=gene_sets,
            min_size=min_size,
            max_size=max_size,
            permutation_num=permutations,
            seed=seed,
            threads=threads,
            outdir=None,
            no_plot=True,
            verbose=False,
        )
    collection = {name: s.collection for name, s in sets.items()}
    rows, curves = [], {}
    for term, r in result.results.items():
        hits = list(r["hits"])
        rows.append(
            {
                "collection": collection.get(term, ""),
                "set": term,
                "size": len(hits),
                "ES": float(r["es"]),
                "NES": float(r["nes"]),
                "pvalue": float(r["pval"]),
                "fdr": float(r["fdr"]),
                "fwer": float(r["fwerp"]),
                "leading_edge": r["lead_genes"],
            }
        )
        curves[term] = {"RES": np.asarray(r["RES"], dtype=float), "hits": np.asarray(hits, dtype=int)}
    table = pd.DataFrame(rows, columns=GSEA_COLUMNS).sort_values(["fdr", "pvalue", "set"]).reset_index(drop=True)
    return table, curves


def run_ora(
    table: pd.DataFrame, sets: Mapping[str, GeneSet], *, alpha: float = 0.05, min_abs_log2fc: float = 0.0
) -> pd.DataFrame:
    """Hypergeometric over-representation of up- and down-regulated genes.

    Universe: genes with a p-value in `table` (the tested genes); a gene is up (down) when padj < alpha and
    log2FC > 0 (< 0) with |log2FC| >= min_abs_log2fc. P = P[X >= k], X ~ Hypergeom(N universe, K set genes in
    the universe, n list size); BH per collection and direction.
    """
    from scipy.stats import hypergeom

    tested = table[table["pvalue"].notna()]
    universe = pd.Index(tested["symbol"].astype(str)).unique()
    significant = tested["padj"].lt(alpha) & tested["log2FC"].abs().ge(min_abs_log2fc)
    lists = {
        "up": set(tested.loc[significant & tested["log2FC"].gt(0), "symbol"].astype(str)),
        "down": set(tested.loc[significant & tested["log2FC"].lt(0), "symbol"].astype(str)),
    }
    in_universe = set(universe)
    rows = []
    for direction, genes in lists.items():
        for name, gene_set in sets.items():
            members = {g for g in gene_set.genes if g in in_universe}
            overlap = sorted(members & genes)
            n_universe, n_set, n_list, k = len(universe), len(members), len(genes), len(overlap)
            pvalue = float(hypergeom.sf(k - 1, n_universe, n_set, n_list)) if n_set and n_list else 1.0
            expected = n_set * n_list / n_universe if n_universe else 0.0
            rows.append(
                {
                    "collection": gene_set.collection,
                    "set": name,
                    "direction": direction,
                    "overlap": k,
                    "set_size": n_set,
                    "list_size": n_list,
                    "universe": n_universe,
                    "fold_enrichment": k / expected if expected else np.nan,
                    "pvalue": pvalue,
                    "padj": np.nan,
                    "genes": ";".join(overlap),
                }
            )
    result = pd.DataFrame(rows, columns=ORA_COLUMNS)
    for _, index in result.groupby(["collection", "direction"]).groups.items():
        result.loc[index, "padj"] = bh_fdr(result.loc[index, "pvalue"].to_numpy())
    return result.sort_values(["padj", "pvalue", "set"]).reset_index(drop=True)


@dataclass
class EnrichmentResult:
    gsea: pd.DataFrame
    ora: pd.DataFrame
    sizes: pd.DataFrame  # every set: sizes, kept or why dropped
    collections: pd.DataFrame  # every configured collection: run or not, and why
    curves: dict[str, Any]
    ranking: pd.Series
    sets: dict[str, GeneSet]
    themes: dict[str, str]  # collection -> theme


def enrich(
    table: pd.DataFrame,
    collections: Sequence[tuple[CollectionSpec, Sequence[str]]],
    settings: EnrichmentSettings,
    *,
    alpha: float = 0.05,
    threads: int = 1,
    left_out: Mapping[str, str] | None = None,
) -> EnrichmentResult:
    """Load every enabled collection, filter set sizes against the tested genes, run GSEA and ORA.

    `left_out` maps a collection whose resources this run does not use to the reason
    (`ResourcePlan.why_left_out`: an offline run, or a restricted resource without the user's copy)."""
    status, all_sets, notes_rows = [], {}, []
    for spec, files in collections:
        base = {
            "collection": spec.name,
            "theme": spec.theme,
            "source": spec.gmt or spec.catalogue or ", ".join(spec.resource),
        }
        if not spec.enabled:
            status.append(
                {
                    **base,
                    "status": "not run",
                    "sets": 0,
                    "reason": f"disabled in the config (enrichment.collections.{spec.name}.enabled: false)"
                    + (f"; {spec.how_to_enable}" if spec.how_to_enable else ""),
                }
            )
            continue
        if spec.name in (left_out or {}):
            status.append({**base, "status": "not run", "sets": 0, "reason": (left_out or {})[spec.name]})
            continue
        if spec.catalogue and not Path(spec.catalogue).is_dir():
            status.append(
                {
                    **base,
                    "status": "not run",
                    "sets": 0,
                    "reason": f"signature catalogue {spec.catalogue} not present in this checkout",
                }
            )
            continue
        sets, notes = load_collection(spec, files)
        notes_rows.extend(notes)
        if not sets:
            status.append({**base, "status": "not run", "sets": 0, "reason": "no usable gene lists"})
            continue
        duplicate = sorted(set(sets) & set(all_sets))
        if duplicate:
            # the same published set can come from two collections (WP4313 in the shipped short list and from
            # WikiPathways itself): keep both, the later one named after its collection
            sets = {(f"{spec.name}:{name}" if name in all_sets else name): gene_set for name, gene_set in sets.items()}
            sets = {name: GeneSet(name, s.genes, s.description, s.collection) for name, s in sets.items()}
            notes.append(
                f"{len(duplicate)} set names also in an earlier collection, prefixed with '{spec.name}:' "
                f"({', '.join(duplicate[:5])})"
            )
        all_sets.update(sets)
        status.append({**base, "status": "run", "sets": len(sets), "reason": "; ".join(notes)})
    ranking = ranking_from_de(table)
    kept, sizes = filter_sets(all_sets, ranking.index, settings.min_size, settings.max_size)
    gsea, curves = run_prerank(
        ranking,
        kept,
        permutations=settings.permutations,
        seed=settings.seed,
        threads=threads,
        min_size=settings.min_size,
        max_size=settings.max_size,
    )
    ora = (
        run_ora(table, kept, alpha=alpha, min_abs_log2fc=settings.ora_min_abs_log2fc)
        if settings.ora
        else pd.DataFrame(columns=ORA_COLUMNS)
    )
    themes = {spec.name: spec.theme for spec, _ in collections}
    return EnrichmentResult(gsea, ora, sizes, pd.DataFrame(status), curves, ranking, kept, themes)
