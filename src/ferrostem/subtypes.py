"""Ferroptosis subtypes: consensus clustering of tumours on the ferroptosis regulators.

Consensus clustering (Monti S, Tamayo P, Mesirov J, Golub T. Machine Learning 2003;52:91-118) as
ConsensusClusterPlus implements it (Wilkerson MD, Hayes DN. Bioinformatics 2010;26:1572-1573):
- each of `resamples` repetitions draws floor(item_fraction * n) tumours (and floor(feature_fraction * m)
  genes) without replacement and clusters them for every k in k_min..k_max: hierarchical clustering
  (average linkage) on 1 - Pearson correlation between tumours (ConsensusClusterPlus' `clusterAlg = "hc"`,
  `distance = "pearson"`), or k-means;
- the consensus matrix M_k(i, j) = (times i and j fell in one cluster) / (times both were drawn);
- the final subtypes at k: average-linkage hierarchical clustering of 1 - M_k, cut into k groups;
- k is chosen from the CDF of the consensus values (lower triangle, 100-bin histogram as in
  ConsensusClusterPlus): its area A(k), the delta area (A(2) at k = 2, (A(k) - A(k-1)) / A(k-1) above), and
  the proportion of ambiguous clustering PAC = CDF(0.9) - CDF(0.1) (Senbabaoglu Y, Michailidis G, Li JZ.
  Sci Rep 2014;4:6207), the lower the more stable.

The PyPI package `consensusclustering` 0.2.4 was checked and not used: its CDF is a 10-bin density histogram
over the whole matrix (diagonal included), its delta area divides by A(k+1) instead of A(k-1) and drops
k_max, it resamples no genes, has no final class assignment and keeps every resample's n x n matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import squareform

from .config import settings_from_block, with_schema_defaults
from .errors import CohortError, ConfigError, InputFormatError
from .runtime import single_threaded_blas

ALGORITHMS = ("hc", "km")
K_RULES = ("pac", "delta_area")
CDF_BREAKS = 100  # ConsensusClusterPlus' histogram breaks for the CDF area


class TooFewTumours(CohortError):
    """The cohort has fewer tumours (or regulators) than consensus clustering needs."""


@dataclass
class SubtypeSettings:
    """Top-level `subtypes:` config block (see config/README.md); its defaults are the schema's (`from_config`)."""

    enabled: bool
    regulators: Any
    k_min: int
    k_max: int
    resamples: int
    item_fraction: float
    feature_fraction: float
    algorithm: Literal["hc", "km"]
    choose_k: Any  # pac | delta_area | an integer k
    delta_area_min: float  # delta_area rule: stop at the first k whose relative gain is below this
    pac_window: list[float]
    min_tumours: int
    min_subtype_size: int
    min_regulators: int
    on_small_cohort: Literal["note", "error"]
    seed: int
    de: bool  # DE of each subtype against the other tumours (de: settings)

    def __post_init__(self) -> None:
        problems = []
        if self.algorithm not in ALGORITHMS:
            problems.append(f"algorithm {self.algorithm!r} is not one of {list(ALGORITHMS)}")
        if not isinstance(self.choose_k, int) and self.choose_k not in K_RULES:
            problems.append(f"choose_k {self.choose_k!r} is not one of {list(K_RULES)} or an integer")
        if not 2 <= self.k_min <= self.k_max:
            problems.append(f"k_min {self.k_min} and k_max {self.k_max}: need 2 <= k_min <= k_max")
        if isinstance(self.choose_k, int) and not self.k_min <= self.choose_k <= self.k_max:
            problems.append(f"choose_k {self.choose_k} is outside k_min..k_max ({self.k_min}..{self.k_max})")
        for key in ("item_fraction", "feature_fraction"):
            if not 0 < getattr(self, key) <= 1:
                problems.append(f"{key} {getattr(self, key)} is not in (0, 1]")
        if self.resamples < 1:
            problems.append(f"resamples {self.resamples} < 1")
        if self.on_small_cohort not in ("note", "error"):
            problems.append(f"on_small_cohort {self.on_small_cohort!r} is not note or error")
        if len(self.pac_window) != 2 or not 0 <= self.pac_window[0] < self.pac_window[1] <= 1:
            problems.append(f"pac_window {self.pac_window} is not [lower, upper] with 0 <= lower < upper <= 1")
        if problems:
            raise ConfigError("subtypes: " + "; ".join(problems))

    @classmethod
    def from_config(cls, values: Mapping[str, Any] | None) -> SubtypeSettings:
        return settings_from_block(cls, with_schema_defaults(values, "subtypes"), "subtypes")


@dataclass
class ConsensusResult:
    samples: list[str]
    genes: list[str]
    consensus: dict[int, np.ndarray]  # k -> n x n consensus matrix
    classes: dict[int, np.ndarray]  # k -> final class (1..k) per sample
    k_stats: pd.DataFrame  # k, cdf_area, delta_area, pac, smallest_cluster
    cdf: pd.DataFrame  # consensus value grid (rows) x k: the empirical CDF
    settings: dict[str, Any]


def pearson_distance(values: np.ndarray) -> np.ndarray:
    """1 - Pearson correlation between the rows of samples x genes `values` (R: 1 - cor(d))."""
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(values)
    return 1.0 - np.nan_to_num(correlation, nan=0.0)


def cut_tree_labels(tree: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """len(ks) x n cluster labels of a scipy linkage cut into k groups (R's cutree: undo the last k - 1 merges).

    scipy's cut_tree gives the same partitions but is ~50 times slower, and this runs once per resample. A
    node's leaves are one contiguous block of the dendrogram's leaf order, so undoing a merge relabels the
    block of its second child.
    """
    n = tree.shape[0] + 1
    children = tree[:, :2].astype(int)
    size = np.concatenate([np.ones(n, dtype=int), tree[:, 3].astype(int)])
    start = np.zeros(2 * n - 1, dtype=int)
    for i in range(n - 2, -1, -1):  # top-down: left child first, as scipy's leaves_list orders them
        left, right = children[i]
        start[left] = start[n + i]
        start[right] = start[n + i] + size[left]
    order = np.empty(n, dtype=int)
    order[start[:n]] = np.arange(n)
    in_order = np.zeros(n, dtype=int)
    out = np.zeros((len(ks), n), dtype=int)
    wanted = {k: row for row, k in enumerate(ks)}
    for clusters in range(1, max(ks) + 1):
        if clusters > 1:
            right = children[n - clusters, 1]  # undo merge n - clusters (the top one first)
            in_order[start[right] : start[right] + size[right]] = clusters - 1
        if clusters in wanted:
            out[wanted[clusters], order] = in_order
    return out


def _hc_labels(values: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    distance = pearson_distance(values)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(np.clip(distance, 0, None), checks=False), method="average")
    return cut_tree_labels(tree, ks)


def _km_labels(values: np.ndarray, ks: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    from sklearn.cluster import KMeans

    return np.stack(
        [KMeans(n_clusters=k, n_init=1, random_state=int(rng.integers(2**31))).fit_predict(values) for k in ks]
    )


def final_classes(consensus: np.ndarray, k: int) -> np.ndarray:
    """ConsensusClusterPlus' class assignment: hclust(as.dist(1 - M), "average"), cutree(k); classes numbered
    1..k in order of their first member (as R's cutree numbers them)."""
    tree = linkage(squareform(1.0 - consensus, checks=False), method="average")
    labels = cut_tree_labels(tree, [k])[0]
    order = {label: number for number, label in enumerate(dict.fromkeys(labels), start=1)}
    return np.array([order[label] for label in labels])


def consensus_cdf(consensus: np.ndarray, breaks: int = CDF_BREAKS) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF of the lower-triangle consensus values on ConsensusClusterPlus' histogram grid:
    (right edges of the bins, cumulative fraction)."""
    values = consensus[np.tril_indices_from(consensus, k=-1)]
    edges = np.arange(breaks + 1) * (1.0 / breaks)  # R: seq(0, 1, by = 1/breaks) is from + (0:n) * by
    counts = _right_closed_counts(values, edges)
    return edges[1:], np.cumsum(counts) / max(counts.sum(), 1)


def _right_closed_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in R hist()'s bins: right-closed (a, b], the first one [0, b] (include.lowest)."""
    index = np.searchsorted(edges, values, side="left") - 1
    index = np.clip(index, 0, len(edges) - 2)
    return np.bincount(index, minlength=len(edges) - 1)


def cdf_area(consensus: np.ndarray, breaks: int = CDF_BREAKS) -> float:
    """ConsensusClusterPlus' area: sum over bins of CDF(bin) x bin width."""
    edges, cdf = consensus_cdf(consensus, breaks)
    return float(np.sum(cdf * np.diff(np.concatenate([[0.0], edges]))))


def pac(consensus: np.ndarray, window: Sequence[float] = (0.1, 0.9)) -> float:
    """Proportion of ambiguous clustering: share of tumour pairs with consensus in (lower, upper]."""
    values = consensus[np.tril_indices_from(consensus, k=-1)]
    lower, upper = window
    return float(np.mean((values > lower) & (values <= upper)))


def consensus_cluster(
    data: pd.DataFrame,
    *,
    k_min: int = 2,
    k_max: int = 6,
    resamples: int = 500,
    item_fraction: float = 0.8,
    feature_fraction: float = 1.0,
    algorithm: str = "hc",
    seed: int = 0,
    pac_window: Sequence[float] = (0.1, 0.9),
) -> ConsensusResult:
    """Consensus clustering of the rows (tumours) of samples x genes `data` for k in k_min..k_max."""
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"subtypes.algorithm: {algorithm!r} is not one of {list(ALGORITHMS)}")
    values = data.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        bad = data.columns[~np.isfinite(values).all(axis=0)]
        raise InputFormatError(f"consensus clustering: non-finite values for gene(s) {', '.join(map(str, bad[:5]))}")
    n, m = values.shape
    ks = list(range(k_min, k_max + 1))
    n_items, n_features = int(np.floor(n * item_fraction)), max(int(np.floor(m * feature_fraction)), 2)
    if n_items <= k_max:
        raise TooFewTumours(
            f"consensus clustering: {n} tumours x item_fraction {item_fraction} = {n_items} per "
            f"resample, not more than k_max = {k_max}"
        )
    rng = np.random.default_rng(seed)
    # per resample and k, each tumour's cluster (-1: not drawn); the pair counts are then one product of one-hot
    # indicator matrices per k (integer counts, exact in any order) instead of a scattered update per resample
    label_of = {k: np.full((resamples, n), -1) for k in ks}
    # each resample's correlation matrix is a product of a few hundred tumours x ~20 regulators: a multi-threaded
    # BLAS only adds thread hand-offs to it (8 times the CPU on 2 busy cores, the TCGA-size job: 13 of its 44 s)
    with single_threaded_blas():
        for r in range(resamples):
            items = np.sort(rng.choice(n, size=n_items, replace=False))
            features = np.sort(rng.choice(m, size=n_features, replace=False)) if n_features < m else np.arange(m)
            subset = values[np.ix_(items, features)]
            labels = _hc_labels(subset, ks) if algorithm == "hc" else _km_labels(subset, ks, rng)
            for k, row in zip(ks, labels):
                label_of[k][r, items] = row
    in_resample = (label_of[ks[0]] >= 0).astype(float)  # (resamples, n)
    drawn = in_resample.T @ in_resample
    together = {}
    for k in ks:
        clusters = int(label_of[k].max()) + 1
        one_hot = (label_of[k][:, :, None] == np.arange(clusters)[None, None, :]).astype(float)  # (R, n, c)
        flat = one_hot.transpose(1, 0, 2).reshape(n, resamples * clusters)
        together[k] = flat @ flat.T
    with np.errstate(invalid="ignore", divide="ignore"):
        consensus = {k: np.where(drawn > 0, together[k] / drawn, 0.0) for k in ks}
    for matrix in consensus.values():
        np.fill_diagonal(matrix, 1.0)
    classes = {k: final_classes(consensus[k], k) for k in ks}
    areas = [cdf_area(consensus[k]) for k in ks]
    delta = [
        areas[0] if k == 2 else (areas[i] - areas[i - 1]) / areas[i - 1] if i > 0 else np.nan for i, k in enumerate(ks)
    ]
    stats = pd.DataFrame(
        {
            "k": ks,
            "cdf_area": areas,
            "delta_area": delta,
            "pac": [pac(consensus[k], pac_window) for k in ks],
            "smallest_cluster": [int(np.bincount(classes[k])[1:].min()) for k in ks],
        }
    )
    grid = consensus_cdf(consensus[ks[0]])[0]
    cdf = pd.DataFrame({k: consensus_cdf(consensus[k])[1] for k in ks}, index=pd.Index(grid, name="consensus"))
    return ConsensusResult(
        samples=list(map(str, data.index)),
        genes=list(map(str, data.columns)),
        consensus=consensus,
        classes=classes,
        k_stats=stats,
        cdf=cdf,
        settings={
            "k_min": k_min,
            "k_max": k_max,
            "resamples": resamples,
            "item_fraction": item_fraction,
            "feature_fraction": feature_fraction,
            "algorithm": algorithm,
            "seed": seed,
            "pac_window": list(pac_window),
        },
    )


def choose_k(
    stats: pd.DataFrame, rule: str | int, *, min_subtype_size: int = 1, delta_area_min: float = 0.1
) -> tuple[int, str]:
    """The number of subtypes and why: a fixed k, the lowest PAC (ties: the largest such k), or the delta-area
    elbow (the last k before the relative gain in CDF area falls below `delta_area_min`), among the k whose smallest
    subtype has at least `min_subtype_size` tumours."""
    if isinstance(rule, (int, np.integer)) and not isinstance(rule, bool):
        if int(rule) not in set(stats["k"]):
            raise ConfigError(f"subtypes.choose_k: {rule} is not among the k tried ({list(stats['k'])})")
        return int(rule), f"k = {rule} fixed by subtypes.choose_k"
    allowed = stats[stats["smallest_cluster"] >= min_subtype_size]
    if allowed.empty:
        raise TooFewTumours(
            f"no k in {list(stats['k'])} gives subtypes of >= {min_subtype_size} tumours (subtypes.min_subtype_size)"
        )
    skipped = sorted(set(stats["k"]) - set(allowed["k"]))
    note = (
        f"; k = {', '.join(map(str, skipped))} left out (a subtype under {min_subtype_size} tumours)" if skipped else ""
    )
    if rule == "pac":
        # equally unambiguous at a larger k (PAC 0 at k = 2 and 3: a third group splits off cleanly): the larger k
        row = allowed[allowed["pac"] <= allowed["pac"].min() + 1e-9].iloc[-1]
        return int(row["k"]), f"lowest PAC ({row['pac']:.3f}) at k = {int(row['k'])}{note}"
    if rule == "delta_area":
        chosen = int(allowed["k"].iloc[0])
        for k, gain in zip(allowed["k"].iloc[1:], allowed["delta_area"].iloc[1:]):
            if gain < delta_area_min:
                break
            chosen = int(k)
        return chosen, (f"delta area: relative gain in CDF area below {delta_area_min} after k = {chosen}{note}")
    raise ConfigError(f"subtypes.choose_k: {rule!r} is not one of {list(K_RULES)} or an integer")


def regulator_matrix(
    expression: pd.DataFrame, regulators: Sequence[str], *, min_regulators: int = 5, where: str = "cohort"
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Tumours x regulators on the log2 scale, median-centred per gene (the ConsensusClusterPlus vignette);
    regulators absent from the cohort or constant across its tumours are left out and counted."""
    wanted = list(dict.fromkeys(map(str, regulators)))
    present = [g for g in wanted if g in expression.columns]
    missing = [g for g in wanted if g not in expression.columns]
    values = expression[present].astype(float)
    constant = [g for g in present if not np.nanstd(values[g].to_numpy()) > 0]
    values = values.drop(columns=constant)
    if values.shape[1] < min_regulators:
        raise TooFewTumours(
            f"{where}: {values.shape[1]} of {len(wanted)} ferroptosis regulators are measured and "
            f"vary across tumours; consensus clustering needs >= {min_regulators} "
            f"(subtypes.min_regulators). Missing: {', '.join(missing[:10]) or 'none'}; "
            f"constant: {', '.join(constant[:10]) or 'none'}"
        )
    if values.isna().any().any():
        gene = values.columns[values.isna().any()][0]
        raise InputFormatError(
            f"{where}: regulator {gene} has missing values in sample {values.index[values[gene].isna()][0]}"
        )
    centred = values - values.median(axis=0)
    return centred, {"requested": len(wanted), "used": values.shape[1], "missing": missing, "constant": constant}
