"""Run the configured deconvolution methods on a cohort and build its report section."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .deconvolution import METHODS, CoverageError, deconvolve, read_signature_matrix
from .errors import ScaleError
from .plots import figure_uri, new_figure
from .report import Section, table_html

LAYER_FOR_SCALE = {"tpm": "tpm", "linear": "tpm", "log2": "log2"}


@dataclass
class CohortDeconvolution:
    fractions: pd.DataFrame  # samples x <method>__<cell type or statistic>
    coverage: pd.DataFrame  # one row per configured method: genes found, missing, run or why not
    warnings: list[str] = field(default_factory=list)


def deconvolve_cohort(
    layers: Mapping[str, pd.DataFrame],
    layer_scales: Mapping[str, str],
    methods: Sequence[str],
    *,
    min_coverage: float,
    quantiseq_tumour: bool = True,
    cibersort_matrix: str | None = None,
    cibersort_left_out: str | None = None,
    permutations: int = 100,
    seed: int = 1,
) -> CohortDeconvolution:
    """Every configured method on the layer its scale needs; a method the cohort cannot give (wrong scale, too
    few signature genes, no CIBERSORT matrix) is left out with its reason, and the others run."""
    frames, rows, warnings = [], [], []
    for method in methods:
        spec = METHODS[method]
        layer = LAYER_FOR_SCALE[spec.input_scale]
        row: dict[str, Any] = {
            "method": method,
            "input": layer_scales.get(layer, layer),
            "citation": spec.citation,
            "genes_in_signature": 0,
            "genes_found": 0,
            "coverage": np.nan,
            "missing": "",
            "run": False,
            "reason": "",
        }
        try:
            if method == "cibersort":
                if not cibersort_matrix:
                    raise CoverageError(f"cibersort needs a signature matrix: {cibersort_left_out or 'none given'}")
                options: dict[str, Any] = {
                    "signature": read_signature_matrix(cibersort_matrix, context="resources.paths.cibersort_lm22"),
                    "permutations": permutations,
                    "seed": seed,
                }
            elif method == "quantiseq":
                options = {"tumour": quantiseq_tumour}
            else:
                options = {}
            result = deconvolve(
                method, layers[layer], layer_scales.get(layer, layer), min_coverage=min_coverage, **options
            )
        except (ScaleError, CoverageError) as error:
            row["reason"] = str(error)
            warnings.append(f"{method} not run: {error}")
            rows.append(row)
            continue
        if method == "cibersort":
            table = pd.concat([result.fractions, result.statistics], axis=1)
            coverage = result.coverage
        else:
            table, coverage = result
        frames.append(table.add_prefix(f"{method}__"))
        row.update({k: v for k, v in coverage.row().items() if k != "method"}, run=True)
        if coverage.missing:
            warnings.append(
                f"{method}: {len(coverage.missing)} of {coverage.genes_in_signature} signature genes "
                f"missing ({coverage.fraction:.0%} coverage)"
            )
        rows.append(row)
    fractions = pd.concat(frames, axis=1) if frames else pd.DataFrame(index=next(iter(layers.values())).index)
    fractions = fractions.rename_axis("sample_id")
    return CohortDeconvolution(fractions, pd.DataFrame(rows), warnings)


def method_columns(fractions: pd.DataFrame, method: str) -> list[str]:
    """The cell-type fraction columns of one method (statistics and IPS parts excluded)."""
    statistics = {"p_value", "correlation", "rmse", "absolute_score"}
    prefix = f"{method}__"
    return [c for c in fractions.columns if c.startswith(prefix) and c[len(prefix) :] not in statistics]


def _stacked_bars(fractions: pd.DataFrame, title: str) -> str:
    order = (
        fractions.drop(columns=[c for c in fractions.columns if c.endswith("Other")]).sum(axis=1).sort_values().index
    )
    shown = fractions.loc[order]
    fig, ax = new_figure(max(6.0, min(14.0, 0.06 * len(shown) + 4)), 4.2)
    bottom = np.zeros(len(shown))
    colours = matplotlib_colours(len(shown.columns))
    # one filled step outline per cell type instead of one bar patch per sample: the same touching, edgeless
    # bars (width 1), drawn as a dozen polygons rather than a patch per sample and cell type
    edges = np.arange(len(shown) + 1) - 0.5
    for colour, column in zip(colours, shown.columns):
        values = shown[column].to_numpy(dtype=float)
        top = bottom + values
        ax.fill_between(
            edges,
            np.append(bottom, bottom[-1]),
            np.append(top, top[-1]),
            step="post",
            color=colour,
            label=column.split("__", 1)[1],
            linewidth=0,
        )
        bottom = top
    ax.set_xlim(-0.5, len(shown) - 0.5)
    ax.set_ylim(0, max(1.0, float(bottom.max())))
    ax.set_xticks([])
    ax.set_xlabel(f"samples ({len(shown)}), ordered by immune fraction")
    ax.set_ylabel("fraction")
    ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    return figure_uri(fig)


def matplotlib_colours(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(i % cmap.N) for i in range(n)]


def deconvolution_section(result: CohortDeconvolution, obs: pd.DataFrame) -> Section:
    figures, tables, summary = [], [], []
    tissue = (
        obs["tissue"].reindex(result.fractions.index)
        if "tissue" in obs.columns
        else pd.Series("", index=result.fractions.index)
    )
    for method, title in (("quantiseq", "quanTIseq cell fractions"), ("cibersort", "CIBERSORT (nu-SVR) fractions")):
        columns = method_columns(result.fractions, method)
        if not columns:
            continue
        fractions = result.fractions[columns]
        figures.append(
            {"uri": _stacked_bars(fractions, title), "caption": f"{title} per sample (stacked; each bar sums to 1)."}
        )
        by_tissue = fractions.groupby(tissue, observed=True).mean().T
        by_tissue.index = [c.split("__", 1)[1] for c in by_tissue.index]
        by_tissue.columns.name = None
        tables.append(
            {"title": f"{title}: mean by tissue", "html": table_html(by_tissue.reset_index(names="cell type"))}
        )
        if method == "quantiseq" and "quantiseq__Other" in fractions.columns:
            immune = 1 - fractions["quantiseq__Other"]
            tumours = immune[tissue.eq("tumor")] if tissue.eq("tumor").any() else immune
            summary.append(
                f"Deconvolution: quanTIseq immune share in tumours, median {tumours.median():.2f} "
                f"(range {tumours.min():.2f} to {tumours.max():.2f})."
            )
    if "cibersort__p_value" in result.fractions.columns:
        significant = int((result.fractions["cibersort__p_value"] < 0.05).sum())
        tables.append(
            {
                "title": "CIBERSORT fit per sample",
                "html": table_html(
                    result.fractions[
                        ["cibersort__p_value", "cibersort__correlation", "cibersort__rmse", "cibersort__absolute_score"]
                    ]
                    .rename(columns=lambda c: c.split("__", 1)[1])
                    .reset_index(),
                    max_rows=50,
                ),
            }
        )
        summary.append(f"CIBERSORT: {significant} of {len(result.fractions)} samples with permutation p < 0.05.")
    if "ips__IPS" in result.fractions.columns:
        ips = result.fractions[[c for c in result.fractions.columns if c.startswith("ips__")]]
        described = ips.groupby(tissue, observed=True).mean().T
        described.index = [c.split("__", 1)[1] for c in described.index]
        described.columns.name = None
        tables.append(
            {"title": "Immunophenoscore: mean by tissue", "html": table_html(described.reset_index(names="part"))}
        )
    coverage = result.coverage.copy()
    coverage["missing"] = coverage["missing"].map(lambda m: m if len(m) < 200 else m[:200] + "...")
    return Section(
        id="deconvolution",
        title="Cell-type deconvolution",
        template="deconvolution.html.j2",
        order=55,
        context={"figures": figures, "tables": tables, "coverage": table_html(coverage, max_rows=20)},
        warnings=list(result.warnings),
        summary=summary,
    )
