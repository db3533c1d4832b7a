"""Differential expression: comparisons from the config, PyDESeq2 for counts, limma-style models for log data.

A `Comparison` names an `obs` column, a test and a reference level, optional pairing (by patient) and
covariates. `prepare_design` checks, before anything is fitted, that both groups have enough samples, that
covariates exist and are not confounded with the group, and that the design has residual degrees of
freedom; every failure names the comparison, the column and the samples at fault.

The method follows the cohort's declared scale (`uns['assay']`): RNA-seq counts go to DESeq2 as run by
PyDESeq2's pipeline (Love, Huber & Anders, Genome Biol 2014; Muzellec et al., Bioinformatics 2023), with
its per-gene fits either batched over all genes with DESeq2's own rules (`de.engine: vectorised`, the
default; `deseq2_batched`) or PyDESeq2's own (`pydeseq2`); log-scale arrays to
limma's lmFit/eBayes moderated t (Smyth, Stat Appl Genet Mol Biol 2004) as ported by `inmoose`.
Giving log values to DESeq2 or raw counts to the linear model is refused (`check_counts`, `check_log_scale`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd

from .config import settings_from_block
from .errors import CohortError, ConfigError, ScaleError
from .scales import check_counts, check_log_scale

log = logging.getLogger(__name__)

RESULT_COLUMNS = ["gene_id", "symbol", "baseMean", "log2FC", "lfcSE", "stat", "pvalue", "padj"]
GROUP = "group"  # design-frame names are ours, so user column names (spaces, dots) never reach a formula
PAIR = "pair"
ENGINES = ("vectorised", "pydeseq2")
FIT_TYPES = ("parametric", "local", "mean")
ENGINE_LABELS = {"vectorised": "vectorised engine, DESeq2's rules", "pydeseq2": "PyDESeq2 per-gene engine"}


class DesignError(ConfigError):
    """A comparison cannot be fitted: too few samples, unknown levels, confounded covariates."""


@dataclass
class DESettings:
    """Top-level `de:` config block."""

    min_count: int = 10  # pre-filter: a gene needs >= min_count reads ...
    min_samples: int | None = None  # ... in at least this many samples (None: the smaller group's size)
    alpha: float = 0.05  # FDR target, also used by DESeq2's independent filtering
    lfc_shrink: bool = False  # apeGLM shrinkage of log2FC (DESeq2 path); stat/pvalue stay Wald
    min_group_size: int = 2
    top_genes: int = 40  # heatmap of the top DE genes
    threads: int = 4  # PyDESeq2 workers per DE job; the rule passes min(threads, --cores) as n_cpus
    engine: Literal["vectorised", "pydeseq2"] = "vectorised"  # DESeq2 fits for all genes at once, or per gene
    fit_type: Literal["parametric", "local", "mean"] = "parametric"  # DESeq2's fitType for the dispersion trend

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"de.engine: {self.engine!r} is not one of {list(ENGINES)}")
        _check_fit_type(self.fit_type, self.engine)

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None) -> DESettings:
        return settings_from_block(cls, values, "de")


@dataclass
class Comparison:
    """One entry of a cohort's `comparisons:` list."""

    name: str
    column: str
    test: str
    reference: str
    paired: bool = False
    pair_by: str = "patient_id"
    covariates: list[str] = field(default_factory=list)
    method: Literal["auto", "deseq2", "limma"] = "auto"

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> Comparison:
        """One validated `comparisons:` entry (the schema and config.semantic_errors check it); levels are
        compared as strings, as obs values are."""
        values = dict(values)
        for key in ("test", "reference"):
            if key in values:
                values[key] = str(values[key])
        return settings_from_block(cls, values, f"comparison {values.get('name', '?')}")

    @property
    def formula(self) -> str:
        """The design as a user reads it (original column names)."""
        terms = ([self.pair_by] if self.paired else []) + list(self.covariates) + [self.column]
        return "~ " + " + ".join(terms)


@dataclass
class DesignPlan:
    """The samples and design of one comparison, checked and ready to fit."""

    comparison: Comparison
    samples: list[str]
    frame: pd.DataFrame  # samples x {pair, covariates as c0.., group} with safe names
    matrix: pd.DataFrame  # samples x design columns (intercept first, group coefficient last)
    group_coefficient: str
    n_test: int
    n_reference: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "comparison": asdict(self.comparison),
            "formula": self.comparison.formula,
            "samples": len(self.samples),
            "n_test": self.n_test,
            "n_reference": self.n_reference,
            "design_columns": list(self.matrix.columns),
            "notes": list(self.notes),
        }


def _levels(series: pd.Series) -> pd.Series:
    """obs values as strings, NA kept as NA (categoricals and numbers alike: 1.0 -> '1')."""
    out = series.astype(object).where(series.notna(), None)
    return out.map(
        lambda v: None if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    )


def _safe_name(index: int) -> str:
    return f"c{index}"


def _in_span(target: np.ndarray, basis: np.ndarray, tol: float = 1e-8) -> bool:
    coef, *_ = np.linalg.lstsq(basis, target, rcond=None)
    residual = target - basis @ coef
    return float(np.abs(residual).max()) < tol * max(1.0, float(np.abs(target).max()))


def prepare_design(
    obs: pd.DataFrame, comparison: Comparison, *, min_group_size: int = 2, cohort: str = "cohort"
) -> DesignPlan:
    """Select the comparison's samples and build its design; raise DesignError before any fitting."""
    where = f"cohort {cohort}, comparison {comparison.name!r}"
    groups = _comparison_groups(obs, comparison, where)
    notes: list[str] = []
    frame = _compared_samples(obs, comparison, groups, notes)
    if comparison.paired:
        frame = _complete_pairs(frame, obs, comparison, where, notes)
    n_test, n_ref = _check_group_sizes(frame, comparison, min_group_size, where)
    _check_covariates_vary(frame, comparison, where)
    matrix, group_coefficient = _design_matrix(frame, comparison)
    _check_estimable(matrix, len(frame), comparison, group_coefficient, where)
    return DesignPlan(comparison, list(map(str, frame.index)), frame, matrix, group_coefficient, n_test, n_ref, notes)


def _comparison_groups(obs: pd.DataFrame, comparison: Comparison, where: str) -> pd.Series:
    """The compared column's levels (strings); the columns the design needs, and both levels, must exist."""
    needed = [comparison.column] + list(comparison.covariates) + ([comparison.pair_by] if comparison.paired else [])
    missing = [c for c in needed if c not in obs.columns]
    if missing:
        raise DesignError(
            f"{where}: column(s) {missing} are not sample annotations; available: {sorted(map(str, obs.columns))}"
        )
    if comparison.column in comparison.covariates:
        raise DesignError(f"{where}: the compared column {comparison.column!r} is also listed as a covariate")
    groups = _levels(obs[comparison.column])
    present = sorted({g for g in groups if g is not None})
    for role, level in (("test", comparison.test), ("reference", comparison.reference)):
        if level not in present:
            raise DesignError(
                f"{where}: {role} level {level!r} does not occur in column {comparison.column!r}; "
                f"levels present: {present}"
            )
    return groups


def _compared_samples(obs: pd.DataFrame, comparison: Comparison, groups: pd.Series, notes: list[str]) -> pd.DataFrame:
    """Samples in the test or reference group with every covariate known: covariates under safe names, plus GROUP."""
    chosen = groups.isin([comparison.test, comparison.reference])
    other = int((~chosen).sum())
    if other:
        notes.append(
            f"{other} samples are in neither {comparison.test!r} nor {comparison.reference!r} "
            f"(or have no {comparison.column!r}) and are not used"
        )
    frame = pd.DataFrame(index=obs.index[chosen])
    for i, covariate in enumerate(comparison.covariates):
        values = obs.loc[chosen, covariate]
        numeric = pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype)
        frame[_safe_name(i)] = values.astype(float) if numeric else _levels(values)
    unknown_cov = frame.isna().any(axis=1)
    if unknown_cov.any():
        notes.append(
            f"{int(unknown_cov.sum())} samples lack a covariate value and are not used: "
            f"{', '.join(map(str, frame.index[unknown_cov][:10]))}"
        )
        frame = frame.loc[~unknown_cov]
    frame[GROUP] = np.where(groups[frame.index] == comparison.test, "test", "reference")
    return frame


def _complete_pairs(
    frame: pd.DataFrame, obs: pd.DataFrame, comparison: Comparison, where: str, notes: list[str]
) -> pd.DataFrame:
    """A paired design keeps the pairs with exactly one sample in each group (PAIR column added)."""
    frame[PAIR] = _levels(obs.loc[frame.index, comparison.pair_by])
    counts = frame.groupby([PAIR, GROUP]).size().unstack(fill_value=0)
    for level in ("test", "reference"):
        if level not in counts.columns:
            counts[level] = 0
    duplicated = counts.index[(counts["test"] > 1) | (counts["reference"] > 1)]
    if len(duplicated):
        raise DesignError(
            f"{where}: paired by {comparison.pair_by!r}, but {list(duplicated[:5])} have several samples "
            "in one group; keep one sample per patient and group (harmonise.one_sample_per_patient)"
        )
    complete = counts.index[(counts["test"] == 1) & (counts["reference"] == 1)]
    unpaired = frame[PAIR].isna() | ~frame[PAIR].isin(complete)
    if unpaired.any():
        notes.append(f"paired design: {int(unpaired.sum())} samples without a partner in the other group are not used")
    return frame.loc[~unpaired]


def _check_group_sizes(frame: pd.DataFrame, comparison: Comparison, min_group_size: int, where: str) -> tuple[int, int]:
    """Samples per group (test, reference); each needs at least `min_group_size`."""
    n_test, n_ref = int((frame[GROUP] == "test").sum()), int((frame[GROUP] == "reference").sum())
    for level, label, n in (("test", comparison.test, n_test), ("reference", comparison.reference, n_ref)):
        if n < min_group_size:
            names = ", ".join(map(str, frame.index[frame[GROUP] == level])) or "none"
            raise DesignError(
                f"{where}: group {comparison.column}={label!r} has {n} usable sample(s) ({names}); "
                f"at least {min_group_size} are needed per group"
            )
    return n_test, n_ref


def _check_covariates_vary(frame: pd.DataFrame, comparison: Comparison, where: str) -> None:
    for i, covariate in enumerate(comparison.covariates):
        if frame[_safe_name(i)].nunique() < 2:
            raise DesignError(
                f"{where}: covariate {covariate!r} has a single value among the compared samples "
                "and cannot be estimated; remove it from the comparison"
            )


def _design_matrix(frame: pd.DataFrame, comparison: Comparison) -> tuple[pd.DataFrame, str]:
    """The model matrix (intercept first, the group coefficient last) and the group coefficient's name."""
    import formulaic

    frame[GROUP] = pd.Categorical(frame[GROUP], categories=["reference", "test"])
    terms = (
        ([f"C({PAIR})"] if comparison.paired else [])
        + [
            (f"C({_safe_name(i)})" if frame[_safe_name(i)].dtype == object else _safe_name(i))
            for i in range(len(comparison.covariates))
        ]
        + [GROUP]
    )
    matrix = formulaic.model_matrix("1 + " + " + ".join(terms), frame)
    matrix = pd.DataFrame(np.asarray(matrix, dtype=float), index=frame.index, columns=list(matrix.columns))
    group_coefficient = f"{GROUP}[T.test]"
    return matrix[[c for c in matrix.columns if c != group_coefficient] + [group_coefficient]], group_coefficient


def _check_estimable(
    matrix: pd.DataFrame, n_samples: int, comparison: Comparison, group_coefficient: str, where: str
) -> None:
    """The group effect must not be confounded with the covariates; the design must have full rank and residual
    degrees of freedom."""
    indicator = matrix[group_coefficient].to_numpy()
    others = matrix.drop(columns=group_coefficient).to_numpy()
    if _in_span(indicator, others):
        culprits = []
        for i, covariate in enumerate(comparison.covariates):
            columns = ["Intercept"] + [
                c for c in matrix.columns if c == _safe_name(i) or c.startswith(f"C({_safe_name(i)})")
            ]
            if _in_span(indicator, matrix[columns].to_numpy()):
                culprits.append(covariate)
        who = f"covariate(s) {culprits}" if culprits else "the covariates together"
        raise DesignError(
            f"{where}: {who} perfectly confounded with {comparison.column!r} "
            f"({comparison.test} vs {comparison.reference}); the group effect cannot be separated. "
            "Remove the covariate or compare within its levels"
        )
    rank = np.linalg.matrix_rank(matrix.to_numpy())
    if rank < matrix.shape[1]:
        raise DesignError(
            f"{where}: the design {comparison.formula} is not of full rank ({rank} of {matrix.shape[1]} "
            "columns estimable): some covariate levels are collinear"
        )
    if n_samples - rank < 1:
        raise DesignError(
            f"{where}: {n_samples} samples leave no residual degrees of freedom for {matrix.shape[1]} design columns"
        )


# ---------------------------------------------------------------------------------------------------------
# fitting


def prefilter_counts(counts: np.ndarray, min_count: int, min_samples: int) -> np.ndarray:
    """Boolean mask of genes with >= min_count reads in >= min_samples samples.

    The DESeq2 vignette's suggestion (`rowSums(counts(dds) >= 10) >= smallestGroupSize`): it removes
    genes that cannot be significant, which saves time and memory; DESeq2's own independent filtering
    still runs on what is left.
    """
    return (np.asarray(counts) >= min_count).sum(axis=0) >= max(min_samples, 1)


@dataclass
class DEResult:
    table: pd.DataFrame  # RESULT_COLUMNS (+ log2FC_unshrunk), one row per tested gene, index = symbol
    method: str
    plan: DesignPlan
    genes_in: int
    genes_tested: int
    expression: pd.DataFrame  # samples x tested genes on a variance-stabilised scale (VST or log2) for plots
    expression_scale: str
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self, alpha: float) -> dict[str, Any]:
        sig = self.table["padj"] < alpha
        return {
            **self.plan.summary(),
            "method": self.method,
            "genes_in": self.genes_in,
            "genes_tested": self.genes_tested,
            "alpha": alpha,
            "significant": int(sig.sum()),
            "up": int((sig & (self.table["log2FC"] > 0)).sum()),
            "down": int((sig & (self.table["log2FC"] < 0)).sum()),
            "expression_scale": self.expression_scale,
            **self.details,
        }


def run_deseq2(
    counts: pd.DataFrame,
    plan: DesignPlan,
    *,
    alpha: float = 0.05,
    lfc_shrink: bool = False,
    n_cpus: int = 1,
    independent_filter: bool = True,
    vst: bool = True,
    size_factors_fit_type: str = "ratio",
    engine: str = "vectorised",
    fit_type: str = "parametric",
) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame | None]:
    """DESeq2 on samples x genes counts: size factors, dispersions, Wald test, BH with independent filtering.

    `engine` "vectorised" runs PyDESeq2's pipeline with every per-gene fit done for all genes at once
    (`deseq2_batched`); "pydeseq2" is PyDESeq2's own per-gene path (joblib/loky workers, `n_cpus`). Both
    drop intermediate layers (`low_memory`). Returns the results (index = genes), fitted quantities (size
    factors, dispersions) and the VST (blind=False: design-aware trend, as the DESeq2 vignette advises for
    downstream plots) or None.
    """
    from .runtime import single_threaded_blas

    if engine not in ENGINES:
        raise ConfigError(f"de.engine: {engine!r} is not one of {list(ENGINES)}")
    _check_fit_type(fit_type, engine)
    # PyDESeq2 fits each gene with many tiny L-BFGS-B problems; a multi-threaded BLAS makes each of them
    # several times slower (thread start-up per call), and the batched engine runs its gene blocks on
    # n_cpus threads itself: BLAS runs single-threaded on both paths.
    with single_threaded_blas():
        return _run_deseq2(
            counts,
            plan,
            alpha=alpha,
            lfc_shrink=lfc_shrink,
            n_cpus=n_cpus,
            independent_filter=independent_filter,
            vst=vst,
            size_factors_fit_type=size_factors_fit_type,
            engine=engine,
            fit_type=fit_type,
        )


def _share_counts(dds: Any, counts: pd.DataFrame) -> bool:
    """Let `dds` read the caller's counts instead of its own copy of them, where the two are the same array.

    DeseqDataSet keeps `counts.astype(int)`, a second copy beside the caller's frame, which the callers hold for
    the whole fit (150 MB at TCGA size). Where the frame's array has the copy's dtype, memory layout and values
    (the DE job's frame: int64, F-ordered), the dataset gets a read-only view of it: the same numbers in the same
    order in memory, so the same bits downstream, and a write would raise instead of changing the caller's
    counts. Otherwise (another dtype or layout) the copy stays. Returns whether the view replaced it.
    """
    own = counts.to_numpy()
    copy = dds.X
    if own.dtype != copy.dtype or own.strides != copy.strides or not np.array_equal(own, copy):
        return False
    view = own.view()
    view.flags.writeable = False
    dds.X = view
    return True


def _check_fit_type(fit_type: str, engine: str) -> None:
    if fit_type not in FIT_TYPES:
        raise ConfigError(f"de.fit_type: {fit_type!r} is not one of {list(FIT_TYPES)}")
    if fit_type == "local" and engine != "vectorised":
        raise ConfigError(
            "de.fit_type: 'local' (DESeq2's locfit trend) needs de.engine: vectorised; PyDESeq2 has no local fit"
        )


def linear_model_inference(n_cpus: int) -> Any:
    """PyDESeq2's DefaultInference with the initial means of all genes fitted in one least-squares solve."""
    from .deseq2_batched import LinearModelMuInference

    return LinearModelMuInference(n_cpus=n_cpus)


def _vst_with_design(dds: Any) -> np.ndarray:
    """VST of the normalised counts with the dispersion trend already fitted for the design.

    This is DESeq2's `vst(blind = FALSE)` (Love, Huber & Anders 2014; Anders & Huber 2010): the parametric
    trend a0 + a1/mu of the model fit gives a closed-form transform. PyDESeq2's own `vst(use_design=True)`
    re-estimates every gene-wise dispersion to arrive at the same curve, doubling the cost of a DE job.
    """
    from .deseq2_batched import parametric_vst

    if dds.fit_type == "parametric" and "trend_coeffs" in dds.uns:
        dds.vst_fit_type = "parametric"
        dds.uns["vst_trend_coeffs"] = dds.uns["trend_coeffs"]
        a0, a1 = dds.uns["trend_coeffs"]
        return parametric_vst(dds.layers["normed_counts"], a0, a1)
    if dds.uns.get("disp_function_type") == "local":  # fitType "local", asked for or R's fallback
        dds.vst_fit_type = "local"
        dds.uns["vst_local_trend"] = dds.uns["local_trend"]
        return np.asarray(dds.vst_transform())
    dds.vst(use_design=True)
    return np.asarray(dds.layers["vst_counts"])


def _run_deseq2(
    counts: pd.DataFrame,
    plan: DesignPlan,
    *,
    alpha: float,
    lfc_shrink: bool,
    n_cpus: int,
    independent_filter: bool,
    vst: bool,
    size_factors_fit_type: str,
    engine: str,
    fit_type: str,
) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame | None]:
    from pydeseq2.dds import DeseqDataSet

    from .deseq2_batched import BatchedDeseqDataSet, BatchedInference
    from .deseq2_filtering import deseq_stats_class

    if not counts.index.equals(pd.Index(plan.samples)):
        counts = counts.loc[plan.samples]  # a copy: at TCGA size 150 MB kept for the whole fit
    if not all(np.issubdtype(dtype, np.integer) for dtype in counts.dtypes):
        # whole numbers stored as floats (check_counts allows 1e-6 off): the nearest integers, as DESeq2's
        # integer check would otherwise refuse 11.9999999 and a cast would truncate it to 11
        counts = counts.round().astype(np.int64)
    if engine == "vectorised":
        inference, dataset = BatchedInference(n_cpus=n_cpus), BatchedDeseqDataSet
    else:
        inference, dataset = linear_model_inference(n_cpus), DeseqDataSet
    dds = dataset(
        counts=counts,  # DeseqDataSet keeps its own integer copy (astype(int))
        metadata=plan.frame.astype({GROUP: str}),
        design=plan.matrix,
        refit_cooks=True,
        inference=inference,
        quiet=True,
        low_memory=True,
        size_factors_fit_type=size_factors_fit_type,
        fit_type=fit_type,
    )
    _share_counts(dds, counts)
    dds.deseq2()
    contrast = np.zeros(plan.matrix.shape[1])
    contrast[list(plan.matrix.columns).index(plan.group_coefficient)] = 1.0
    stats = deseq_stats_class()(  # PyDESeq2's DeseqStats with R's lowess in the independent filtering
        dds, contrast=contrast, alpha=alpha, independent_filter=independent_filter, inference=inference, quiet=True
    )
    stats.summary()
    table = stats.results_df.copy()
    table = table.rename(columns={"log2FoldChange": "log2FC"})
    if lfc_shrink:
        unshrunk = table["log2FC"].copy()
        stats.lfc_shrink(coeff=plan.group_coefficient)
        table["log2FC"] = stats.results_df["log2FoldChange"]
        table["lfcSE"] = stats.results_df["lfcSE"]
        table["log2FC_unshrunk"] = unshrunk
    per_gene = {
        "dispersions": "dispersions",
        "genewise_dispersions": "genewise_dispersions",
        "trend_dispersions": "fitted_dispersions",
        "dispersion_outlier": "_outlier_genes",
        "refitted": "refitted",
    }
    fitted: dict[str, Any] = {"size_factors": pd.Series(np.asarray(dds.obs["size_factors"]), index=counts.index)}
    fitted.update(
        {
            key: pd.Series(np.asarray(dds.var[column]), index=counts.columns)
            for key, column in per_gene.items()
            if column in dds.var
        }
    )
    fitted["dispersion_trend"] = str(dds.uns["disp_function_type"])  # the fit used (R: a fallback may apply)
    if "trend_coeffs" in dds.uns:
        fitted["trend_coefficients"] = [float(c) for c in dds.uns["trend_coeffs"]]
    fitted["prior_dispersion_variance"] = float(np.asarray(dds.uns["prior_disp_var"]))
    if independent_filter:
        fitted["filter_threshold"] = float(stats.filter_threshold)  # R's metadata(res)$filterThreshold
    vst_frame = None
    if vst:
        vst_frame = pd.DataFrame(_vst_with_design(dds), index=counts.index, columns=counts.columns)
    return table, fitted, vst_frame


def run_limma(values: pd.DataFrame, plan: DesignPlan) -> tuple[pd.DataFrame, dict[str, Any]]:
    """limma lmFit + eBayes (inmoose port) on samples x genes log-scale values; moderated t for the group.

    lfcSE is the posterior standard error `stdev_unscaled * sqrt(s2_post)`, so `stat = log2FC / lfcSE`.
    """
    import warnings

    from .numerics import bh_fdr
    from .runtime import import_submodule

    # inmoose.limma only: inmoose's __init__ would import its other tools (seaborn, scikit-learn; ~0.5-1.3 s)
    limma = import_submodule("inmoose.limma")
    eBayes, lmFit = limma.eBayes, limma.lmFit

    values = values.loc[plan.samples]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        fit = eBayes(lmFit(values.T, plan.matrix))
    k = list(plan.matrix.columns).index(plan.group_coefficient)
    coefficient = np.asarray(fit.coefficients)[:, k]
    stdev = np.asarray(fit.stdev_unscaled)[:, k]
    s2_post = np.asarray(fit.s2_post, dtype=float)
    pvalues = np.asarray(fit.p_value)[:, k]
    table = pd.DataFrame(
        {
            "baseMean": np.asarray(fit.Amean, dtype=float),
            "log2FC": coefficient,
            "lfcSE": stdev * np.sqrt(s2_post),
            "stat": np.asarray(fit.t)[:, k],
            "pvalue": pvalues,
            "padj": bh_fdr(pvalues),
        },
        index=values.columns,
    )
    df_prior = np.asarray(fit.df_prior, dtype=float)
    return table, {
        "df_prior": float(np.mean(df_prior)),
        "s2_prior": float(np.mean(np.asarray(fit.s2_prior, dtype=float))),
    }


def choose_method(adata: ad.AnnData, comparison: Comparison, cohort: str) -> str:
    return method_for(comparison, cohort, assay=adata.uns.get("assay"), layers=list(adata.layers))


def method_for(comparison: Comparison, cohort: str, *, assay: str | None, layers: Sequence[str]) -> str:
    """The comparison's method on a cohort of this assay and these layers (DESeq2 needs raw counts)."""
    has_counts = "counts" in layers
    method = comparison.method
    if method == "auto":
        method = "deseq2" if assay == "rnaseq" and has_counts else "limma"
    if method == "deseq2" and not has_counts:
        raise ScaleError(
            f"cohort {cohort}, comparison {comparison.name!r}: method deseq2 needs raw counts, but the "
            f"cohort ({assay}) has only {sorted(layers)} (log-scale data): use method limma"
        )
    return method


def input_layer(comparison: Comparison, cohort: str, *, assay: str | None, layers: Sequence[str]) -> str:
    """The one expression layer the comparison's method reads: counts for DESeq2, log2 for the linear model."""
    return "counts" if method_for(comparison, cohort, assay=assay, layers=layers) == "deseq2" else "log2"


def differential_expression(
    adata: ad.AnnData, comparison: Comparison, settings: DESettings, *, cohort: str = "cohort", n_cpus: int = 1
) -> DEResult:
    """Run one comparison on a harmonised cohort (see module docstring)."""
    plan = prepare_design(adata.obs, comparison, min_group_size=settings.min_group_size, cohort=cohort)
    method = choose_method(adata, comparison, cohort)
    where = f"cohort {cohort}, comparison {comparison.name!r}"
    symbols = adata.var_names.astype(str)
    rows = adata.obs_names.get_indexer(plan.samples)
    gene_ids = adata.var["gene_id"].astype(str) if "gene_id" in adata.var else pd.Series("", index=adata.var_names)
    if method == "deseq2":
        counts = np.asarray(adata.layers["counts"][rows])
        check_counts(counts, genes=list(symbols), samples=plan.samples, where=f"{where}, layer 'counts'")
        min_samples = settings.min_samples or min(plan.n_test, plan.n_reference)
        keep = prefilter_counts(counts, settings.min_count, min_samples)
        if keep.sum() == 0:
            raise CohortError(f"{where}: no gene has >= {settings.min_count} reads in >= {min_samples} samples")
        frame = pd.DataFrame(counts[:, keep], index=plan.samples, columns=symbols[keep])
        # the last use of both: where the caller keeps no reference to the cohort (the DE job), its counts layer
        # (206 MB at TCGA size) is freed before the fit instead of after it
        del counts, adata
        table, fitted, expression = run_deseq2(
            frame,
            plan,
            alpha=settings.alpha,
            lfc_shrink=settings.lfc_shrink,
            n_cpus=n_cpus,
            engine=settings.engine,
            fit_type=settings.fit_type,
        )
        details = {
            "prefilter": f">= {settings.min_count} reads in >= {min_samples} samples",
            "genes_removed_by_prefilter": int((~keep).sum()),
            "independent_filtering": f"DESeq2 ({ENGINE_LABELS[settings.engine]}): padj NA for genes below the "
            f"optimal baseMean threshold, {fitted['filter_threshold']:.4g} (R's filterThreshold)",
            "lfc_shrink": settings.lfc_shrink,
            "engine": settings.engine,
            "fit_type": settings.fit_type,
            "dispersion_trend": fitted["dispersion_trend"],  # differs from fit_type where R falls back
            "size_factor_range": [float(fitted["size_factors"].min()), float(fitted["size_factors"].max())],
        }
        scale = "DESeq2 variance-stabilising transformation (design-aware)"
    else:
        layer = "log2"
        values = np.asarray(adata.layers[layer][rows], dtype=np.float64)
        check_log_scale(values, where=f"{where}, layer {layer!r}")
        frame = pd.DataFrame(values, index=plan.samples, columns=symbols)
        keep = np.ones(len(symbols), dtype=bool)
        table, fit_details = run_limma(frame, plan)
        expression = frame
        details = {
            "prefilter": "none (array intensities)",
            "genes_removed_by_prefilter": 0,
            "eBayes_df_prior": fit_details["df_prior"],
            "eBayes_s2_prior": fit_details["s2_prior"],
            "baseMean_scale": f"mean of the {adata.uns.get('layer_scales', {}).get(layer, layer)} values",
        }
        scale = adata.uns.get("layer_scales", {}).get(layer, "log2")
    table.insert(0, "symbol", table.index.astype(str))
    table.insert(0, "gene_id", gene_ids.reindex(table.index).fillna("").to_numpy())
    extra = [c for c in table.columns if c not in RESULT_COLUMNS]
    table = table[RESULT_COLUMNS + extra]
    return DEResult(
        table=table,
        method=method,
        plan=plan,
        genes_in=len(symbols),
        genes_tested=int(keep.sum()),
        expression=expression,
        expression_scale=scale,
        details=details,
    )
