"""Per-sample signature scores: a registry of typed, pure scoring methods (decoupler style).

Every method is a function `(expression, signature, **options) -> DataFrame` (samples x score columns) and
declares the expression scale it needs: "log2" (log2(TPM+1) or log2 array intensity), "linear" (TPM or
linear intensity) or "any" (rank-based: any monotone scale). `score_signature` checks the declared scale
against the scale of the matrix it is given and against the values (log2 data above 30, or linear data
below 0, is refused), so a score is never computed on the wrong scale silently.

Expression matrices are pandas DataFrames, samples as rows and genes as columns, already restricted to
nothing: the signature (mapped to the cohort's gene names by `ferrostem.signatures.map_signature`) says
which columns a method reads. Score columns are named `<signature id>` or `<signature id>__<part>`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .errors import FerrostemError
from .progress import ProgressReport
from .errors import ConfigError, InputFormatError, ScaleError
from .scales import Scale, check_scale
from .signatures import SINGLE, AliasTable, Signature, cohort_symbol_index, map_signature, unscored_coverage

ESTIMATE_PURITY = (0.6049872018, 0.0001467884)  # cos(a + b * ESTIMATE score), Yoshihara 2013 (Affymetrix fit)


class UnscorableInput(FerrostemError, ValueError):
    """This cohort's expression cannot give this signature's score (too few genes left, a missing housekeeping
    set; or, as a ScaleError, the wrong scale): score_many records the reason in the coverage table and scores
    the other signatures. Anything else a method raises (a catalogue entry that is wrong, a programming error)
    stops the run."""


def _columns(expr: pd.DataFrame, genes: Sequence[str], context: str) -> np.ndarray:
    missing = [g for g in genes if g not in expr.columns]
    if missing:
        raise KeyError(f"{context}: gene(s) {missing[:10]} not in the expression matrix (map the signature first)")
    return expr.columns.get_indexer(list(genes))


# ---------------------------------------------------------------------------------------------------
# Numerical kernels (each cited; each tested against a reference in tests/test_scoring.py)
# ---------------------------------------------------------------------------------------------------


def _ranks_and_positions(values: np.ndarray, rows_per_block: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per row of finite `values`: `scipy.stats.rankdata(method="average")` (float64) and each column's 0-based
    position in R's `order(rank, decreasing = TRUE)` (ties in column order), both from one stable sort.

    A tie group occupying ascending positions [start, end) has average rank (start + 1 + end) / 2 (an exact
    half) and, in the decreasing order, the N - end columns above it, its own columns in column order. Rows
    are done in blocks to bound the sort's temporaries (424 x 60,660 at TCGA size).
    """
    n_rows, n = values.shape
    ranks = np.empty((n_rows, n), dtype=np.float64)
    positions = np.empty((n_rows, n), dtype=np.int32)
    column = np.arange(n)
    for first in range(0, n_rows, rows_per_block):
        block = values[first : first + rows_per_block]
        order = np.argsort(block, axis=1, kind="stable")
        ordered = np.take_along_axis(block, order, axis=1)
        starts_group = np.ones(ordered.shape, dtype=bool)
        starts_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        start = np.maximum.accumulate(np.where(starts_group, column, 0), axis=1)
        ends_group = np.ones(ordered.shape, dtype=bool)
        ends_group[:, :-1] = starts_group[:, 1:]
        end = np.minimum.accumulate(np.where(ends_group, column + 1, n)[:, ::-1], axis=1)[:, ::-1]
        np.put_along_axis(ranks[first : first + rows_per_block], order, (start + 1 + end) / 2, axis=1)
        np.put_along_axis(positions[first : first + rows_per_block], order, (n - end) + (column - start), axis=1)
    return ranks, positions


@dataclass(frozen=True)
class RankedExpression:
    """Per-sample gene ranks and positions, computed once and shared by every rank-based score."""

    genes: pd.Index
    samples: pd.Index
    ranks: np.ndarray  # samples x genes, 1 = lowest expression
    positions: np.ndarray  # samples x genes, 0-based position in the decreasing order

    @classmethod
    def from_expression(cls, expr: pd.DataFrame, *, truncate: bool = True) -> RankedExpression:
        """Average ranks per sample; GSVA truncates them to integers (`mode(R) <- "integer"`), ESTIMATE not."""
        values = expr.to_numpy()
        if not np.isfinite(values).all():  # scipy's rules for NaN ranks (a row of NaN), and the sort they give
            ranks = stats.rankdata(values.astype(float), axis=1, method="average")
            order = np.argsort(-ranks, axis=1, kind="stable")  # R's order(decreasing = TRUE) keeps ties in place
            positions = np.empty(order.shape, dtype=np.int32)
            positions[np.arange(order.shape[0])[:, None], order] = np.arange(order.shape[1], dtype=np.int32)
        else:
            ranks, positions = _ranks_and_positions(values)
        ranked = cls(expr.columns, expr.index, ranks, positions)
        return ranked.truncated() if truncate else ranked

    def truncated(self) -> RankedExpression:
        """GSVA's integer ranks, sharing these positions: the floor of an average rank stays above every lower
        tie group's (which ends at least one below) and below the next (which starts above the group), so the
        decreasing order, ties included, is the same."""
        return RankedExpression(self.genes, self.samples, np.floor(self.ranks), self.positions)


def ssgsea_from_ranks(
    ranked: RankedExpression, gene_sets: Mapping[str, Sequence[str]], *, alpha: float = 0.25
) -> pd.DataFrame:
    """Un-normalised single-sample GSEA enrichment scores (samples x sets).

    Barbie DA et al. Nature 2009 (doi:10.1038/nature08460); as implemented by Haenzelmann S et al. GSVA,
    BMC Bioinformatics 2013 (doi:10.1186/1471-2105-14-7), `method = "ssgsea"`: genes ordered by decreasing
    rank, weights |rank|^alpha inside the set, ES = sum over the walk of (F_in - F_out). The sum has the
    closed form GSVA's `.fastRndWalk` uses:
        ES = sum_k w_k (N - p_k) / sum_k w_k  -  (N(N+1)/2 - sum_k (N - p_k)) / (N - K)
    with p_k the 0-based positions of the K set genes. Each sample's score depends on that sample only.
    """
    n_genes = len(ranked.genes)
    out = {}
    for name, genes in gene_sets.items():
        idx = ranked.genes.get_indexer(list(dict.fromkeys(genes)))
        if (idx < 0).any():
            raise KeyError(f"ssGSEA set {name}: genes not in the matrix (map the signature first)")
        k = len(idx)
        if k == 0 or k >= n_genes:
            raise UnscorableInput(f"ssGSEA set {name}: needs between 1 and {n_genes - 1} genes, has {k}")
        tail = n_genes - ranked.positions[:, idx]  # N - p_k
        weight = np.abs(ranked.ranks[:, idx]) ** alpha
        inside = (weight * tail).sum(axis=1) / weight.sum(axis=1)
        outside = (n_genes * (n_genes + 1) / 2 - tail.sum(axis=1)) / (n_genes - k)
        out[name] = inside - outside
    return pd.DataFrame(out, index=ranked.samples)


def normalise_like_gsva(scores: pd.DataFrame) -> pd.DataFrame:
    """GSVA's ssGSEA normalisation: divide every score by the range of the whole score matrix.

    This makes scores depend on the cohort and on which sets were scored together; the un-normalised
    scores do not.
    """
    values = scores.to_numpy(dtype=float)
    span = float(np.nanmax(values) - np.nanmin(values))
    if not span > 0:
        return scores * np.nan
    return scores / span


def ssgsea(
    expr: pd.DataFrame,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    alpha: float = 0.25,
    normalise: bool = True,
    ranked: RankedExpression | None = None,
) -> pd.DataFrame:
    """ssGSEA (samples x sets); `normalise=True` reproduces GSVA::gsva(method="ssgsea") with ssgsea.norm=TRUE."""
    ranked = ranked if ranked is not None else RankedExpression.from_expression(expr)
    scores = ssgsea_from_ranks(ranked, gene_sets, alpha=alpha)
    return normalise_like_gsva(scores) if normalise else scores


def mean_z(expr: pd.DataFrame, genes: Sequence[str]) -> pd.Series:
    """Mean over genes of each gene's z-score across samples (sd with n - 1, as R's scale()).

    Genes constant across samples carry no information and are left out (their z-score is undefined).
    """
    block = expr.iloc[:, _columns(expr, genes, "mean_z")].to_numpy(dtype=float)
    sd = block.std(axis=0, ddof=1)
    keep = sd > 0
    if not keep.any():
        return pd.Series(np.nan, index=expr.index)
    z = (block[:, keep] - block[:, keep].mean(axis=0)) / sd[keep]
    return pd.Series(z.mean(axis=1), index=expr.index)


def mean_log(expr: pd.DataFrame, genes: Sequence[str]) -> pd.Series:
    """Mean log2 expression of the genes (MCP-counter's `appendSignatures`; Ayers' IFN-gamma and expanded sets)."""
    block = expr.iloc[:, _columns(expr, genes, "mean_log")].to_numpy(dtype=float)
    return pd.Series(block.mean(axis=1), index=expr.index)


def pca1(expr: pd.DataFrame, genes: Sequence[str]) -> pd.Series:
    """Scores on the first principal component of the z-scored genes.

    The sign of a principal component is arbitrary; it is fixed so that the loadings sum to a positive
    number, i.e. a higher score means higher expression of the signature's genes overall.
    """
    block = expr.iloc[:, _columns(expr, genes, "pca1")].to_numpy(dtype=float)
    sd = block.std(axis=0, ddof=1)
    keep = sd > 0
    if keep.sum() < 2:
        return mean_z(expr, genes)
    z = (block[:, keep] - block[:, keep].mean(axis=0)) / sd[keep]
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    loadings = vt[0]
    if loadings.sum() < 0:
        loadings = -loadings
    return pd.Series(z @ loadings, index=expr.index)


def weighted_sum(expr: pd.DataFrame, weights: Mapping[str, float], *, exponentiate: bool = False) -> pd.Series:
    """Risk score sum_i w_i x_i (LASSO-Cox signatures); `exponentiate` gives exp(sum), as signifinder does."""
    genes = list(weights)
    block = expr.iloc[:, _columns(expr, genes, "weighted_sum")].to_numpy(dtype=float)
    score = block @ np.array([weights[g] for g in genes], dtype=float)
    return pd.Series(np.exp(score) if exponentiate else score, index=expr.index)


def geometric_mean(expr: pd.DataFrame, genes: Sequence[str], *, offset: float = 0.01) -> pd.Series:
    """exp(mean(log(x + offset))) on linear expression: cytolytic activity, Rooney MS et al. Cell 2015 (TPM + 0.01)."""
    block = expr.iloc[:, _columns(expr, genes, "geometric_mean")].to_numpy(dtype=float)
    return pd.Series(np.exp(np.log(block + offset).mean(axis=1)), index=expr.index)


def weighted_sum_hk(expr: pd.DataFrame, weights: Mapping[str, float], housekeeping: Sequence[str]) -> pd.Series:
    """T cell-inflamed GEP: sum_i w_i (x_i - mean of the housekeeping genes), x on a log scale.

    Ayers M et al. JCI 2017; weights from Cristescu R et al. Science 2018 (easier `compute.Tcell_inflamed`).
    """
    if not housekeeping:
        raise UnscorableInput("weighted_sum_hk: no housekeeping gene left to normalise with")
    hk = expr.iloc[:, _columns(expr, housekeeping, "weighted_sum_hk")].to_numpy(dtype=float).mean(axis=1)
    genes = list(weights)
    block = expr.iloc[:, _columns(expr, genes, "weighted_sum_hk")].to_numpy(dtype=float) - hk[:, None]
    return pd.Series(block @ np.array([weights[g] for g in genes], dtype=float), index=expr.index)


def mrnasi(expr: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    """mRNAsi as TCGAbiolinks' TCGAanalyze_Stemness computes it (Malta TM et al. Cell 2018).

    Over the genes common to the weights and the matrix: Spearman correlation of each sample's expression
    with the weights (`spearman`, cohort-independent), then min-max scaled within the cohort (`minmax`, the
    published mRNAsi, comparable only inside one cohort).
    """
    common = [g for g in weights if g in expr.columns]
    if len(common) < 3:
        raise UnscorableInput(f"mrnasi: only {len(common)} genes in common with the weights")
    x = stats.rankdata(expr[common].to_numpy(dtype=float), axis=1, method="average")
    w = stats.rankdata(np.array([weights[g] for g in common], dtype=float), method="average")
    x = x - x.mean(axis=1, keepdims=True)
    w = w - w.mean()
    rho = (x @ w) / (np.sqrt((x**2).sum(axis=1)) * np.sqrt((w**2).sum()))
    shifted = rho - rho.min()
    top = shifted.max()
    minmax = shifted / top if top > 0 else np.full_like(rho, np.nan)
    return pd.DataFrame({"minmax": minmax, "spearman": rho}, index=expr.index)


def estimate(
    expr: pd.DataFrame, stromal: Sequence[str], immune: Sequence[str], *, ranked: RankedExpression | None = None
) -> pd.DataFrame:
    """ESTIMATE stromal, immune and ESTIMATE scores and tumour purity (Yoshihara K et al. Nat Commun 2013).

    As `estimate::estimateScore`: per sample, genes ranked (average ties, 10000 * rank / N; the scale
    cancels), a running sum with |rank|^0.25 weights, ES = sum of the walk; ESTIMATE = stromal + immune;
    purity = cos(0.6049872018 + 0.0001467884 * ESTIMATE). The purity formula was fitted on Affymetrix
    arrays; on RNA-seq (and on a gene universe other than ESTIMATE's 10,412 common genes) it is indicative.
    """
    ranked = ranked if ranked is not None else RankedExpression.from_expression(expr, truncate=False)
    es = ssgsea_from_ranks(ranked, {"stromal": stromal, "immune": immune}, alpha=0.25)
    es["estimate"] = es["stromal"] + es["immune"]
    a, b = ESTIMATE_PURITY
    es["purity"] = np.cos(a + b * es["estimate"])
    return es


# ---------------------------------------------------------------------------------------------------
# Registry: signature-level methods
# ---------------------------------------------------------------------------------------------------

ScoreFunction = Callable[..., pd.DataFrame]


@dataclass(frozen=True)
class ScoringMethod:
    name: str
    input_scale: Scale
    function: ScoreFunction
    description: str
    # score parts calibrated on absolute intensities, meaningless on log ratios to a reference channel
    intensity_parts: tuple[str, ...] = ()
    # ranks the genes within each sample: on log ratios that is their order of ratio to the reference channel
    ranks_within_sample: bool = False


METHODS: dict[str, ScoringMethod] = {}


def register(
    name: str,
    input_scale: Scale,
    description: str,
    intensity_parts: tuple[str, ...] = (),
    ranks_within_sample: bool = False,
) -> Callable[[ScoreFunction], ScoreFunction]:
    def decorator(function: ScoreFunction) -> ScoreFunction:
        METHODS[name] = ScoringMethod(name, input_scale, function, description, intensity_parts, ranks_within_sample)
        return function

    return decorator


LOG_RATIO_RANKS = (
    "scored on log2 ratios to a reference channel: it ranks the genes within each sample, here by their ratio "
    "to the reference rather than by expression as the method defines, which changes the order of the samples; "
    "compare within this cohort only"
)
LOG_RATIO_LINEAR = (
    "needs linear intensities; this cohort's values are log2 ratios to a reference channel "
    "(two-colour array), whose linear form is a ratio, not an intensity"
)


def _with_note(reason: str, note: str) -> str:
    """A coverage row's reason with one more note after it ("; "-separated; the note alone when there is none)."""
    return "; ".join(filter(None, [reason, note]))


def log_ratio_reason(method: ScoringMethod) -> str | None:
    """Why a method cannot score a cohort of log ratios at all (None: it can, perhaps without some parts)."""
    return LOG_RATIO_LINEAR if method.input_scale == "linear" else None


def column(sig: Signature, part: str = SINGLE) -> str:
    return sig.id if part == SINGLE else f"{sig.id}__{part}"


def _per_part(
    sig: Signature, expr: pd.DataFrame, function: Callable[[pd.DataFrame, Sequence[str]], pd.Series]
) -> pd.DataFrame:
    return pd.DataFrame(
        {column(sig, part): function(expr, genes) for part, genes in sig.sets.items()}, index=expr.index
    )


def _two_sets(sig: Signature) -> tuple[Sequence[str], Sequence[str]]:
    positive, negative = sig.params.get("positive"), sig.params.get("negative")
    if positive not in sig.sets or negative not in sig.sets:
        raise InputFormatError(
            f"signature {sig.id}: params positive/negative must name two of its sets "
            f"{list(sig.sets)}, got {positive!r} and {negative!r}"
        )
    return sig.sets[positive], sig.sets[negative]


@register(
    "ssgsea",
    "log2",
    "ssGSEA (alpha 0.25); GSVA's range normalisation unless normalise_ssgsea is false",
    ranks_within_sample=True,
)
def score_ssgsea(
    expr: pd.DataFrame,
    sig: Signature,
    *,
    normalise_ssgsea: bool = True,
    ranked: RankedExpression | None = None,
    **_: Any,
) -> pd.DataFrame:
    scores = ssgsea(expr, sig.sets, normalise=normalise_ssgsea, ranked=ranked)
    return scores.rename(columns=lambda part: column(sig, part))


@register("ssgsea_raw", "log2", "un-normalised ssGSEA: sample-independent", ranks_within_sample=True)
def score_ssgsea_raw(
    expr: pd.DataFrame, sig: Signature, *, ranked: RankedExpression | None = None, **_: Any
) -> pd.DataFrame:
    return score_ssgsea(expr, sig, normalise_ssgsea=False, ranked=ranked)


@register(
    "ssgsea_diff", "log2", "ssGSEA of the positive set minus ssGSEA of the negative set (FPS)", ranks_within_sample=True
)
def score_ssgsea_diff(
    expr: pd.DataFrame,
    sig: Signature,
    *,
    normalise_ssgsea: bool = True,
    ranked: RankedExpression | None = None,
    **_: Any,
) -> pd.DataFrame:
    positive, negative = _two_sets(sig)
    es = ssgsea(expr, {"positive": positive, "negative": negative}, normalise=normalise_ssgsea, ranked=ranked)
    return pd.DataFrame({sig.id: es["positive"] - es["negative"]})


@register("mean_z", "log2", "mean of per-gene z-scores across the cohort's samples")
def score_mean_z(expr: pd.DataFrame, sig: Signature, **_: Any) -> pd.DataFrame:
    return _per_part(sig, expr, mean_z)


@register("mean_z_diff", "log2", "mean z of the positive set minus mean z of the negative set")
def score_mean_z_diff(expr: pd.DataFrame, sig: Signature, **_: Any) -> pd.DataFrame:
    positive, negative = _two_sets(sig)
    return pd.DataFrame({sig.id: mean_z(expr, positive) - mean_z(expr, negative)})


@register("mean_log", "log2", "mean log2 expression (MCP-counter, Ayers IFN-gamma)")
def score_mean_log(expr: pd.DataFrame, sig: Signature, **_: Any) -> pd.DataFrame:
    return _per_part(sig, expr, mean_log)


@register("pca1", "log2", "first principal component of the z-scored genes, sign fixed by the loadings")
def score_pca1(expr: pd.DataFrame, sig: Signature, **_: Any) -> pd.DataFrame:
    return _per_part(sig, expr, pca1)


@register("weighted_sum", "log2", "sum of weight x expression; exp() of it when params.exponentiate")
def score_weighted_sum(expr: pd.DataFrame, sig: Signature, **_: Any) -> pd.DataFrame:
    assert sig.weights is not None
    return pd.DataFrame({sig.id: weighted_sum(expr, sig.weights, exponentiate=bool(sig.params.get("exponentiate")))})


@register("weighted_sum_hk", "log2", "housekeeping-normalised weighted sum (T cell-inflamed GEP)")
def score_weighted_sum_hk(expr: pd.DataFrame, sig: Signature, **_: Any) -> pd.DataFrame:
    assert sig.weights is not None
    return pd.DataFrame({sig.id: weighted_sum_hk(expr, sig.weights, sig.housekeeping)})


@register("geometric_mean", "linear", "geometric mean of linear expression + offset (cytolytic activity)")
def score_geometric_mean(expr: pd.DataFrame, sig: Signature, **_: Any) -> pd.DataFrame:
    offset = float(sig.params.get("offset", 0.01))
    return _per_part(sig, expr, lambda e, g: geometric_mean(e, g, offset=offset))


@register(
    "mrnasi", "any", "Spearman correlation with the PCBC weights, min-max within the cohort", ranks_within_sample=True
)
def score_mrnasi(expr: pd.DataFrame, sig: Signature, **_: Any) -> pd.DataFrame:
    assert sig.weights is not None
    result = mrnasi(expr, sig.weights)
    return result.rename(columns=lambda part: column(sig, part))


@register(
    "estimate",
    "any",
    "ESTIMATE stromal / immune / ESTIMATE scores and purity",
    intensity_parts=("purity",),
    ranks_within_sample=True,
)
def score_estimate(
    expr: pd.DataFrame, sig: Signature, *, estimate_ranked: RankedExpression | None = None, **_: Any
) -> pd.DataFrame:
    result = estimate(expr, sig.sets["stromal"], sig.sets["immune"], ranked=estimate_ranked)
    return result.rename(columns=lambda part: column(sig, part))


@register("gene_panel", "log2", "each gene's log2 expression as its own column")
def score_gene_panel(expr: pd.DataFrame, sig: Signature, **_: Any) -> pd.DataFrame:
    genes = [g for part in sig.sets.values() for g in part]
    block = expr.iloc[:, _columns(expr, genes, sig.id)]
    return pd.DataFrame(block.to_numpy(dtype=float), index=expr.index, columns=[column(sig, g) for g in genes])


def method_of(sig: Signature) -> ScoringMethod:
    if sig.method not in METHODS:
        raise InputFormatError(f"signature {sig.id}: unknown scoring method {sig.method!r}; known: {sorted(METHODS)}")
    return METHODS[sig.method]


def score_signature(expr: pd.DataFrame, sig: Signature, *, scale: str, **options: Any) -> pd.DataFrame:
    """Score one (mapped) signature on a samples x genes matrix of the given scale; checks the scale first."""
    method = method_of(sig)
    required: Scale = method.input_scale if method.input_scale != "any" else "any"
    check_scale(
        expr.loc[:, list(sig.genes)] if sig.genes else expr, scale, required, f"signature {sig.id} ({sig.method})"
    )
    result = method.function(expr, sig, **options)
    if not all(pd.api.types.is_float_dtype(result[c]) for c in result.columns):
        raise TypeError(f"signature {sig.id}: scores must be numeric")
    return result


def score_many(
    log2: pd.DataFrame, linear: pd.DataFrame | None, signatures: Sequence[Signature], *, normalise_ssgsea: bool = True
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Score every mapped signature; ranks are computed once for all rank-based methods.

    A signature this expression cannot score (UnscorableInput: the wrong scale, too few genes for the method)
    is left out with its reason, returned by signature id; the others are scored.
    """
    rank_based = any(s.method.startswith("ssgsea") or s.method == "estimate" for s in signatures)
    average = RankedExpression.from_expression(log2, truncate=False) if rank_based else None
    estimate_ranked = average if any(s.method == "estimate" for s in signatures) else None
    ssgsea_based = average is not None and any(s.method.startswith("ssgsea") for s in signatures)
    ranked = average.truncated() if ssgsea_based else None
    frames, unscored = [], {}
    progress = ProgressReport(f"scoring {len(log2)} samples", len(signatures), unit="signatures", always=False)
    for sig in signatures:
        needs_linear = method_of(sig).input_scale == "linear"
        try:
            if needs_linear and linear is None:
                raise ScaleError(f"signature {sig.id} needs linear expression (TPM) and none was given")
            matrix, scale = (linear, "linear") if needs_linear else (log2, "log2")
            assert matrix is not None
            frames.append(
                score_signature(
                    matrix,
                    sig,
                    scale=scale,
                    normalise_ssgsea=normalise_ssgsea,
                    ranked=ranked,
                    estimate_ranked=estimate_ranked,
                )
            )
        except (UnscorableInput, ScaleError) as error:
            unscored[sig.id] = str(error)
        progress.add()
    progress.close()
    if not frames:
        return pd.DataFrame(index=log2.index), unscored
    scores = pd.concat(frames, axis=1)
    duplicated = scores.columns[scores.columns.duplicated()].tolist()
    if duplicated:
        raise ConfigError(
            f"score columns {duplicated} are given by two signatures (a catalogue id, or a "
            "signatures.user_gmts set, used twice)"
        )
    return scores, unscored


# ---------------------------------------------------------------------------------------------------
# A cohort: map, check coverage, score, describe
# ---------------------------------------------------------------------------------------------------


@dataclass
class CohortScores:
    scores: pd.DataFrame  # samples x score columns, index = sample_id
    info: pd.DataFrame  # one row per score column
    coverage: pd.DataFrame  # one row per catalogue signature (scored or not)
    warnings: list[str]


INFO_COLUMNS = [
    "score",
    "signature_id",
    "name",
    "category",
    "method",
    "direction",
    "citation",
    "status",
    "part",
    "input_scale",
]


def score_cohort(
    log2: pd.DataFrame,
    linear: pd.DataFrame | None,
    signatures: Sequence[Signature],
    aliases: AliasTable,
    *,
    unavailable: Mapping[str, str] | None = None,
    min_coverage: float = 0.7,
    normalise_ssgsea: bool = True,
    assay: str = "rnaseq",
    log_ratios: bool = False,
) -> CohortScores:
    """Map every signature to the cohort, skip those below coverage (with a warning), score the rest.

    `log_ratios`: the cohort's log2 layer holds log ratios to a reference channel (a two-colour array; its
    linear layer is then a ratio): methods that need linear intensities are skipped, score parts calibrated on
    intensities (ESTIMATE's purity) are left out, and methods that rank genes within a sample (ssGSEA, ESTIMATE,
    mRNAsi) are scored with a note, each with the reason in the coverage table.
    A signature the expression cannot score (UnscorableInput) is skipped with its reason; the others are scored.
    """
    warnings: list[str] = []
    coverage_rows = []
    mapped: list[Signature] = []
    genes = list(log2.columns)
    symbol_index = cohort_symbol_index(genes, aliases)
    for sig in signatures:
        result, coverage = map_signature(sig, genes, aliases, min_coverage=min_coverage, symbol_index=symbol_index)
        row = coverage.row() | {"name": sig.label, "method": sig.method, "category": sig.category}
        coverage_rows.append(row)
        if result is None:
            warnings.append(f"{sig.id} ({sig.name}) not scored: {coverage.reason}")
            continue
        ratio_reason = log_ratio_reason(method_of(sig)) if log_ratios else None
        if ratio_reason:
            row.update(scored=False, reason=f"{sig.method} {ratio_reason}")
            warnings.append(f"{sig.id} ({sig.name}) not scored: {row['reason']}")
            continue
        if log_ratios and method_of(sig).intensity_parts:
            parts = ", ".join(f"{sig.id}__{p}" for p in method_of(sig).intensity_parts)
            row["reason"] = _with_note(
                row["reason"],
                f"{parts} not given: calibrated on absolute intensities, and this cohort's values are log2 ratios",
            )
            warnings.append(f"{sig.id}: {row['reason']}")
        if log_ratios and method_of(sig).ranks_within_sample:
            row["reason"] = _with_note(row["reason"], LOG_RATIO_RANKS)
            warnings.append(f"{sig.id} ({sig.name}) {LOG_RATIO_RANKS}")
        if coverage.empty_parts:
            warnings.append(
                f"{sig.id}: no gene left for part(s) {', '.join(coverage.empty_parts)}; those parts are not scored"
            )
        if sig.method == "estimate" and assay == "rnaseq" and not log_ratios:
            warnings.append(
                "estimate__purity uses ESTIMATE's purity formula, fitted on Affymetrix data: on "
                "RNA-seq it is indicative only"
            )
        if sig.method == "geometric_mean" and assay != "rnaseq":
            warnings.append(f"{sig.id}: defined on TPM; this microarray cohort gives linear intensities instead")
        mapped.append(result)
    by_reason: dict[str, list[str]] = {}
    for sig_id, reason in (unavailable or {}).items():
        coverage_rows.append(unscored_coverage(sig_id, reason).row() | {"name": sig_id, "method": "", "category": ""})
        by_reason.setdefault(reason, []).append(sig_id)
    for reason, ids in by_reason.items():  # one warning per missing resource, naming every signature it holds back
        warnings.append(f"{', '.join(ids)} {reason}")
    scores, unscored = score_many(log2, linear, mapped, normalise_ssgsea=normalise_ssgsea)
    if log_ratios:
        intensity_columns = [f"{sig.id}__{part}" for sig in mapped for part in method_of(sig).intensity_parts]
        scores = scores.drop(columns=[c for c in intensity_columns if c in scores.columns])
    for row in coverage_rows:
        if row["signature_id"] in unscored:
            row.update(scored=False, reason=unscored[row["signature_id"]])
            warnings.append(f"{row['signature_id']} ({row['name']}) not scored: {row['reason']}")
    mapped = [sig for sig in mapped if sig.id not in unscored]
    scores = scores.rename_axis("sample_id")
    info_rows = []
    for sig in mapped:
        for name in scores.columns:
            if name == sig.id or name.startswith(sig.id + "__"):
                info_rows.append(
                    {
                        "score": name,
                        "signature_id": sig.id,
                        "name": sig.label,
                        "category": sig.category,
                        "method": sig.method,
                        "direction": sig.direction,
                        "citation": sig.citation_text,
                        "status": sig.status,
                        "part": name[len(sig.id) + 2 :] if name != sig.id else "",
                        "input_scale": method_of(sig).input_scale,
                    }
                )
    info = pd.DataFrame(info_rows, columns=INFO_COLUMNS)
    return CohortScores(scores, info, pd.DataFrame(coverage_rows), warnings)
