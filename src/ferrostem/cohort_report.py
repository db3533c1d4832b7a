"""The cohort and provenance sections of the report (rule `cohort_report`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import yaml
from lifelines import KaplanMeierFitter

from .cohort import uns_to_python
from .endpoints import TIME_UNIT_DAYS, endpoint_names
from .risk_models import too_few_tumours
from .plots import TISSUE_COLOURS, figure_uri, new_figure, pca_coordinates
from .report import Section, table_html
from .survival import follow_up_warnings, median_follow_up_days


# what the sections read of the cohort (cohort_file.read_cohort): the PCA's log2 values and, where the cohort has
# counts, the library sizes
COHORT_REPORT_LAYERS = ("log2",)
COHORT_REPORT_OPTIONAL_LAYERS = ("counts",)
MIN_PCA_SAMPLES = 3  # two principal components need at least three samples


def _pca_figure(adata: ad.AnnData) -> tuple[str | None, str | None]:
    """The PCA figure, or None and the reason it cannot be drawn (too few samples or varying genes)."""
    log2 = pd.DataFrame(adata.layers["log2"], index=adata.obs_names, columns=adata.var_names)
    if adata.n_obs < MIN_PCA_SAMPLES:
        return None, (
            f"PCA not drawn: the cohort has {adata.n_obs} sample(s); two principal components need "
            f"at least {MIN_PCA_SAMPLES}"
        )
    finite = np.isfinite(log2.to_numpy()).all(axis=0)
    log2 = log2.loc[:, finite & (log2.var(axis=0).to_numpy() > 0)]
    if log2.shape[1] < 2:
        return None, f"PCA not drawn: {log2.shape[1]} gene(s) with finite, varying log2 values; at least 2 needed"
    coordinates, ratio = pca_coordinates(log2)
    fig, ax = new_figure(5.5, 4.5)
    for tissue, colour in TISSUE_COLOURS.items():
        mask = (adata.obs["tissue"].astype(str) == tissue).to_numpy()
        if mask.any():
            ax.scatter(
                coordinates.loc[mask, "PC1"],
                coordinates.loc[mask, "PC2"],
                s=14,
                c=colour,
                label=f"{tissue} (n={mask.sum()})",
                alpha=0.8,
                edgecolors="none",
            )
    ax.set_xlabel(f"PC1 ({ratio[0]:.1%})")
    ax.set_ylabel(f"PC2 ({ratio[1]:.1%})")
    ax.legend(frameon=False)
    ax.set_title("PCA of log2 expression, 2,000 most variable genes")
    return figure_uri(fig), None


def _depth_figure(adata: ad.AnnData) -> str:
    fig, ax = new_figure(5.5, 4.0)
    if "counts" in adata.layers:
        depth = np.asarray(adata.layers["counts"]).sum(axis=1) / 1e6
        for tissue, colour in TISSUE_COLOURS.items():
            mask = (adata.obs["tissue"].astype(str) == tissue).to_numpy()
            if mask.any():
                ax.hist(depth[mask], bins=20, color=colour, alpha=0.7, label=tissue)
        ax.set_xlabel("reads assigned to genes (millions)")
        ax.set_ylabel("samples")
        ax.set_title("Library sizes")
        ax.legend(frameon=False)
    else:
        values = np.asarray(adata.layers["log2"])
        order = np.argsort(adata.obs["tissue"].astype(str).to_numpy())
        from .plots import collect_box_lines

        parts = ax.boxplot(
            values[order].T,
            showfliers=False,
            widths=0.8,
            patch_artist=True,
            boxprops={"facecolor": "#d6eaf8", "linewidth": 0.4},
            medianprops={"color": "#1b2631"},
            whiskerprops={"linewidth": 0.4},
            capprops={"linewidth": 0.4},
        )
        collect_box_lines(ax, parts)  # five lines a sample drawn as two collections: the same pixels
        ax.set_xticks([])
        ax.set_xlabel("samples (normal, then tumour)")
        ax.set_ylabel(adata.uns["layer_scales"]["log2"])
        ax.set_title("Expression distribution per sample")
    return figure_uri(fig)


def _km_overview(tumours: pd.DataFrame, endpoints: list[str]) -> str | None:
    """One Kaplan-Meier curve per endpoint, all tumours; None below the minimum number of tumours."""
    known = {e: tumours[f"{e}.time"].notna() & tumours[e].notna() for e in endpoints}
    usable = [e for e in endpoints if not too_few_tumours(int(known[e].sum()), "overview")]
    if not usable:
        return None
    fig, ax = new_figure(5.5, 4.0)
    for endpoint in usable:
        data = tumours.loc[known[endpoint]]
        fitter = KaplanMeierFitter(label=f"{endpoint} (n={len(data)}, {int(data[endpoint].sum())} events)")
        fitter.fit(data[f"{endpoint}.time"] / 365.25, data[endpoint]).plot_survival_function(ax=ax)
    ax.set_xlabel("years")
    ax.set_ylabel("probability without the endpoint's event")
    ax.set_title(f"Kaplan-Meier estimate of the tumours: {', '.join(usable)}")
    return figure_uri(fig)


EXAMPLE_IDS = 10  # ids shown per rule; the full lists are in uns["harmonisation"] (the provenance section)
HARMONISATION_COLUMNS = ["rule", "count", "example ids", "source"]


def _examples(ids: Any, n: int = EXAMPLE_IDS) -> str:
    ids = [str(i) for i in (ids or [])]
    return ", ".join(ids[:n]) + (f" ... ({len(ids) - n} more)" if len(ids) > n else "")


def harmonisation_table(record: Mapping[str, Any]) -> pd.DataFrame:
    """One row per harmonisation rule that changed the data: the rule, how many, which (first ids), and the key of
    `uns["harmonisation"]` that records it (`clinical_rules: <name>` for the {rule, count, ids} records of the
    clinical data)."""
    rows = []

    def add(what: str, rule: Any, count: Any, ids: Any = (), *, source: str) -> None:
        if count:
            rows.append(
                {"rule": f"{what}: {rule}", "count": int(count), "example ids": _examples(ids), "source": source}
            )

    rules = record.get("rules", {})
    add(
        "PAR_Y gene rows",
        record.get("par_y_rule", rules.get("par_y", "")),
        record.get("par_y_rows"),
        source="par_y_rows",
    )
    add(
        "Ensembl ids equal without version",
        "summed",
        record.get("ensembl_duplicates_summed"),
        source="ensembl_duplicates_summed",
    )
    add(
        "symbols on several gene ids",
        record.get("duplicate_symbol_rule", ""),
        len(record.get("symbols_duplicated") or []),
        record.get("symbols_duplicated"),
        source="symbols_duplicated",
    )
    add(
        "genes without a symbol",
        "named by their gene id",
        record.get("genes_without_symbol"),
        source="genes_without_symbol",
    )
    for sample_type, n in (record.get("excluded_sample_types") or {}).items():
        add(f"samples of type {sample_type}", "excluded (harmonise.sample_types)", n, source="excluded_sample_types")
    add(
        "extra samples or aliquots",
        record.get("duplicate_rule", ""),
        len(record.get("duplicates_dropped") or []),
        record.get("duplicates_dropped"),
        source="duplicates_dropped",
    )
    add(
        "clinical records without a sample",
        "left out",
        len(record.get("clinical_without_samples") or []),
        record.get("clinical_without_samples"),
        source="clinical_without_samples",
    )
    add(
        "samples without a clinical record",
        "kept, clinical data missing",
        len(record.get("samples_without_clinical") or []),
        record.get("samples_without_clinical"),
        source="samples_without_clinical",
    )
    add("probes without a gene symbol", "dropped", record.get("probes_unmapped"), source="probes_unmapped")
    add(
        "probes on several symbols",
        record.get("multi_symbol_rule", ""),
        record.get("probes_multi_symbol"),
        source="probes_multi_symbol",
    )
    other_tissue = record.get("other_tissue") or {}
    values = ", ".join(f"{k}: {v}" for k, v in (other_tissue.get("values") or {}).items())
    add(
        f"samples of a third tissue group ({values})",
        other_tissue.get("rule", ""),
        other_tissue.get("count"),
        other_tissue.get("samples"),
        source="other_tissue",
    )
    missing = record.get("missing_values") or {}
    add(
        "probes with missing values",
        f"dropped ({missing.get('rule', '')})",
        missing.get("probes_dropped"),
        missing.get("probes_dropped_ids"),
        source="missing_values",
    )
    add(
        "samples with missing values",
        f"dropped ({missing.get('rule', '')})",
        len(missing.get("samples_dropped") or []),
        missing.get("samples_dropped"),
        source="missing_values",
    )
    add(
        "missing values imputed",
        f"probe median, in {missing.get('probes_imputed', 0)} probes",
        missing.get("values_imputed"),
        source="missing_values",
    )
    endpoints = record.get("endpoints") or {}
    for name, declared in endpoints.items() if isinstance(endpoints, Mapping) else []:
        unit, column = declared.get("unit", "days"), declared.get("time_column", declared.get("time_field"))
        if unit in TIME_UNIT_DAYS and unit != "days":
            add(
                f"{name} times ({column!r}, {unit})",
                f"converted to days (x {TIME_UNIT_DAYS[unit]:.4g})",
                declared.get("samples_with_data"),
                source=f"endpoints: {name}",
            )
    # the clinical rules are already {rule, count, ids} records; routine choices (count 0 never recorded) included
    for name, applied in (record.get("clinical_rules") or {}).items():
        ids = list(applied.get("ids", []))
        rows.append(
            {
                "rule": applied.get("rule", ""),
                "count": int(applied.get("count", len(ids))),
                "example ids": _examples(ids),
                "source": f"clinical_rules: {name}",
            }
        )
    return pd.DataFrame(rows, columns=HARMONISATION_COLUMNS)


def cohort_section(adata: ad.AnnData, label: str, *, time_unit: str | None = None) -> Section:
    """The cohort section (first in the report). `time_unit`: the declared unit of a GEO cohort's times."""
    obs = adata.obs
    by_type = obs.groupby(["sample_type", "tissue"], observed=True).size().rename("samples").reset_index()
    tumours = obs[obs["tissue"].astype(str) == "tumor"]
    harmonisation = uns_to_python(adata.uns.get("harmonisation", {}))
    declared = harmonisation.get("endpoints") or {}
    if not isinstance(declared, Mapping):
        declared = {}
    endpoint_warnings = []
    endpoints = []
    for endpoint in endpoint_names(tumours):
        time, event = tumours[f"{endpoint}.time"], tumours[endpoint]
        known = int((time.notna() & event.notna()).sum())
        follow_up = median_follow_up_days(time, event) / (365.25 / 12)
        record = declared.get(endpoint) or {}
        events = int(event[time.notna()].sum())
        endpoints.append(
            {
                "endpoint": endpoint,
                "from (time / event, unit)": (
                    f"{record['time_field']} / {record['event_field']} ({record['unit']})"
                    if record
                    else f"{harmonisation.get('survival_source', 'source')} (days)"
                ),
                "tumours with data": known,
                "events": events,
                "median follow-up (months)": f"{follow_up:.1f}" if np.isfinite(follow_up) else "not estimable",
            }
        )
        # harmonisation already named a declared endpoint without any event (with the status values found)
        if not events and (not record or record.get("events")):
            endpoint_warnings.append(
                f"endpoint {endpoint}: no event among the {known} tumours with data; it cannot "
                "be analysed"
                + (
                    f" (check {record['declared_in']}: event field "
                    f"{record['event_field']!r}, event values "
                    f"{record['event_values']})"
                    if record
                    else ""
                )
            )
    for name, record in declared.items():
        if name not in {e["endpoint"] for e in endpoints} and record.get("samples_with_data"):
            endpoint_warnings.append(
                f"endpoint {name} ({record.get('declared_in', '')}): no tumour has both a time "
                f"({record.get('time_field')!r}) and a status ({record.get('event_field')!r})"
            )
    clinical = []
    for column in ["sex", "stage", "grade"]:
        counts = (
            tumours[column].astype(str).replace({"nan": "unknown", "None": "unknown", "<NA>": "unknown"}).value_counts()
        )
        clinical.append({"variable": column, "levels": ", ".join(f"{k}: {v}" for k, v in counts.sort_index().items())})
    if tumours["age"].notna().any():
        clinical.append(
            {
                "variable": "age (years)",
                "levels": f"median {tumours['age'].median():.0f} "
                f"(range {tumours['age'].min():.0f}-{tumours['age'].max():.0f})",
            }
        )
    warnings = list(harmonisation.get("warnings", [])) + endpoint_warnings
    # a wrong time unit changes every survival result: shown in the cohort section and in the main findings
    implausible_follow_up = follow_up_warnings(tumours, time_unit, declared)
    warnings.extend(implausible_follow_up)
    pca, pca_note = _pca_figure(adata)
    figures = [{"uri": pca, "caption": "Principal components of log2 expression, coloured by tissue."}] if pca else []
    if pca_note:
        warnings.append(pca_note)
    figures.append(
        {
            "uri": _depth_figure(adata),
            "caption": "Sequencing depth per sample."
            if "counts" in adata.layers
            else "Distribution of log2 intensities per sample.",
        }
    )
    km = _km_overview(tumours, [e["endpoint"] for e in endpoints])
    few = too_few_tumours(len(tumours), "Kaplan-Meier overview of the tumours")
    if few:
        warnings.append(few)
    if km:
        figures.append(
            {
                "uri": km,
                "caption": "Kaplan-Meier estimate of each survival endpoint "
                f"({', '.join(e['endpoint'] for e in endpoints)}), all tumours.",
            }
        )
    facts = {
        "label": label,
        "assay": adata.uns["assay"],
        "samples": adata.n_obs,
        "genes": adata.n_vars,
        "layers": ", ".join(f"{k}: {v}" for k, v in adata.uns["layer_scales"].items()),
        "source": adata.uns["provenance"]["source"],
        "release": adata.uns["provenance"]["release"],
    }
    n_tumour, n_normal = int((obs["tissue"] == "tumor").sum()), int((obs["tissue"] == "normal").sum())
    n_other = int((obs["tissue"] == "other").sum())  # geo.other_tissue: keep
    summary = [
        f"{label}: {n_tumour} tumour and {n_normal} normal samples"
        + (f" (and {n_other} of other tissue, neither)" if n_other else "")
        + f", {adata.n_vars:,} genes"
        + "".join(f", {e['events']} {e['endpoint']} events" for e in endpoints)
        + "."
    ]
    summary = [f"Warning: {w}" for w in implausible_follow_up] + summary
    return Section(
        id="cohort",
        title="Cohort",
        template="cohort.html.j2",
        order=10,
        context={
            "facts": facts,
            "by_type": table_html(by_type),
            "endpoints": table_html(pd.DataFrame(endpoints), float_format="{:.1f}") if endpoints else "",
            "clinical": table_html(pd.DataFrame(clinical)),
            "figures": figures,
            "harmonisation": table_html(harmonisation_table(harmonisation)),
        },
        warnings=warnings,
        summary=summary,
    )


def _yaml(value: Any) -> str:
    return yaml.safe_dump(json.loads(json.dumps(uns_to_python(value), default=str)), sort_keys=False, width=110)


def provenance_section(adata: ad.AnnData, cohort_config: dict[str, Any], full_config: dict[str, Any]) -> Section:
    record = uns_to_python(adata.uns["provenance"])
    software = record.pop("software", {})
    checksums = record.pop("input_sha256", {})
    record.pop("file_md5", None)
    return Section(
        id="provenance",
        title="Provenance",
        template="provenance.html.j2",
        order=1000,
        context={
            "record": _yaml(record),
            "software": table_html(pd.DataFrame(sorted(software.items()), columns=["package", "version"])),
            "checksums": table_html(pd.DataFrame(sorted(checksums.items()), columns=["input", "sha256"])),
            "harmonisation": _yaml(adata.uns.get("harmonisation", {})),
            "cohort_config": _yaml(cohort_config),
            "config": _yaml(full_config),
        },
    )
