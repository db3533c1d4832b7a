"""What the config asks of a cohort, checked against the harmonised cohort before any long job.

Rule `check_cohort` runs this right after harmonisation, so that a comparison column or level that is not in
the data, a comparison that cannot be fitted, or a misspelt gene of interest stops the run seconds in, not
when the DE or survival job reaches it. What can be checked without data (comparison names, signature ids,
`heatmap_order_by`) is checked at config validation (ferrostem.config.semantic_errors).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anndata as ad
import h5py
import pandas as pd
from anndata.io import read_elem

from .de import Comparison, method_for, prepare_design
from .errors import ConfigError, FerrostemError


@dataclass
class CohortAnnotations:
    """What the checks read of a cohort: samples, gene names, assay and layer names (no matrix)."""

    obs: pd.DataFrame
    genes: list[str]
    assay: str
    layers: list[str]

    @classmethod
    def from_anndata(cls, adata: ad.AnnData) -> CohortAnnotations:
        return cls(adata.obs, [str(g) for g in adata.var_names], str(adata.uns.get("assay", "")), list(adata.layers))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> CohortAnnotations:
        """From a cohort .h5ad, reading obs, var and uns only (a TCGA cohort's layers are hundreds of MB)."""
        with h5py.File(path, "r") as handle:
            obs, var = read_elem(handle["obs"]), read_elem(handle["var"])
            assay = read_elem(handle["uns/assay"]) if "uns/assay" in handle else ""
            layers = list(handle["layers"].keys()) if "layers" in handle else []
        return cls(obs, [str(g) for g in var.index], str(assay), layers)


def gene_problems(cohort: CohortAnnotations, genes: list[str], cohort_id: str, key: str) -> tuple[list[str], list[str]]:
    """Genes of `key` the cohort does not measure: errors for RNA-seq (it measures every gene, so a miss is a
    typo or an alias), notes for microarrays (a platform may lack the gene); close symbols are suggested."""
    upper = {name.upper(): name for name in cohort.genes}
    measured = set(cohort.genes)
    errors, notes = [], []
    for gene in dict.fromkeys(genes):
        if gene in measured:
            continue
        exact = upper.get(gene.upper())
        close = [exact] if exact else difflib.get_close_matches(gene, cohort.genes, n=3, cutoff=0.8)
        text = f"cohort {cohort_id}: {key} {gene!r} is not measured" + (
            f"; did you mean {', '.join(close)}?" if close else ""
        )
        (errors if close or cohort.assay == "rnaseq" else notes).append(text)
    return errors, notes


def comparison_problems(
    cohort: CohortAnnotations, comparisons: list[Mapping[str, Any]], cohort_id: str, min_group_size: int
) -> tuple[list[str], list[dict[str, Any]]]:
    """Each comparison's design built as the DE job will build it; the errors and the checked designs."""
    errors, designs = [], []
    for values in comparisons:
        try:
            comparison = Comparison.from_config(values)
            plan = prepare_design(cohort.obs, comparison, min_group_size=min_group_size, cohort=cohort_id)
            method = method_for(comparison, cohort_id, assay=cohort.assay, layers=cohort.layers)
        except FerrostemError as error:
            errors.append(str(error))
            continue
        designs.append({**plan.summary(), "method": method})
    return errors, designs


def check_cohort(cohort: CohortAnnotations, cohort_id: str, checks: Mapping[str, Any]) -> dict[str, Any]:
    """Run every check; raise one ConfigError listing every problem, else return what was checked.

    `checks`: comparisons (the cohort's list), min_group_size (de), genes_of_interest (survival).
    """
    errors, designs = comparison_problems(
        cohort, list(checks.get("comparisons") or []), cohort_id, int(checks.get("min_group_size", 2))
    )
    gene_errors, notes = gene_problems(
        cohort, list(checks.get("genes_of_interest") or []), cohort_id, "survival.genes_of_interest"
    )
    errors += gene_errors
    if errors:
        raise ConfigError("the config does not fit the harmonised cohort:\n  - " + "\n  - ".join(errors))
    return {
        "cohort": cohort_id,
        "samples": len(cohort.obs),
        "genes": len(cohort.genes),
        "comparisons": designs,
        "notes": notes,
    }
