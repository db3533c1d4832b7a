"""What the config asks of a cohort, checked against the harmonised cohort before any long job.

Rule `check_cohort` runs this right after harmonisation, so that a comparison column or level that is not in
the data, a comparison that cannot be fitted, or a misspelt gene of interest stops the run seconds in, not
when the DE or survival job reaches it. What can be checked without data (comparison names, signature ids,
`heatmap_order_by`) is checked at config validation (ferrostem.config.semantic_errors).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import anndata as ad

from .de import Comparison, choose_method, prepare_design
from .errors import ConfigError, FerrostemError


def _close_matches(gene: str, names: list[str], upper: Mapping[str, str]) -> list[str]:
    exact = upper.get(gene.upper())
    return [exact] if exact else difflib.get_close_matches(gene, names, n=3, cutoff=0.8)


def gene_problems(adata: ad.AnnData, genes: list[str], cohort: str, key: str) -> tuple[list[str], list[str]]:
    """Genes of `key` the cohort does not measure: errors for RNA-seq (it measures every gene, so a miss is a
    typo or an alias), notes for microarrays (a platform may lack the gene); close symbols are suggested."""
    names = [str(n) for n in adata.var_names]
    upper = {n.upper(): n for n in names}
    measured = set(names)
    errors, notes = [], []
    for gene in dict.fromkeys(genes):
        if gene in measured:
            continue
        close = _close_matches(gene, names, upper)
        text = f"cohort {cohort}: {key} {gene!r} is not measured" + (f"; did you mean {', '.join(close)}?" if close else "")
        (errors if close or adata.uns.get("assay") == "rnaseq" else notes).append(text)
    return errors, notes


def comparison_problems(adata: ad.AnnData, comparisons: list[Mapping[str, Any]], cohort: str,
                        min_group_size: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Each comparison's design built as the DE job will build it; the errors and the checked designs."""
    errors, designs = [], []
    for values in comparisons:
        try:
            comparison = Comparison.from_config(values)
            plan = prepare_design(adata.obs, comparison, min_group_size=min_group_size, cohort=cohort)
            method = choose_method(adata, comparison, cohort)
        except FerrostemError as error:
            errors.append(str(error))
            continue
        designs.append({**plan.summary(), "method": method})
    return errors, designs


def check_cohort(adata: ad.AnnData, cohort: str, checks: Mapping[str, Any]) -> dict[str, Any]:
    """Run every check; raise one ConfigError listing every problem, else return what was checked.

    `checks`: comparisons (the cohort's list), min_group_size (de), genes_of_interest (survival).
    """
    errors, designs = comparison_problems(adata, list(checks.get("comparisons") or []), cohort,
                                          int(checks.get("min_group_size", 2)))
    gene_errors, notes = gene_problems(adata, list(checks.get("genes_of_interest") or []), cohort,
                                       "survival.genes_of_interest")
    errors += gene_errors
    if errors:
        raise ConfigError("the config does not fit the harmonised cohort:\n  - " + "\n  - ".join(errors))
    return {"cohort": cohort, "samples": adata.n_obs, "genes": adata.n_vars, "comparisons": designs, "notes": notes}
