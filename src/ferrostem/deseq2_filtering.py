"""DESeq2's independent filtering of the adjusted p-values, with R's `lowess`.

DESeq2 (Love, Huber & Anders, Genome Biol 2014, "Automatic independent filtering"; R/results.R
`pvalueAdjustment`, after Bourgon, Gentleman & Huber, PNAS 2010) adjusts the p-values of the genes whose mean
of normalised counts reaches a quantile theta of the means, for 50 thetas, counts the rejections at `alpha`
for each, smooths those counts with `lowess(numRej ~ theta, f = 1/5)` and takes the first theta whose count
exceeds the smooth's maximum less its root-mean-square residual. PyDESeq2 0.5 (`DeseqStats
._independent_filtering`) follows these rules but smooths with its own lowess, which is not R's: on a cohort
whose rejection counts are flat it differed from R's by 0.17 and chose another threshold (56 calls against
R's 55, docs/de.md). `r_lowess` follows R's `lowess` (tests/test_deseq2_filtering.py: R's values from
tests/data/deseq2_filtering/make_lowess_cases.R).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

THETAS = 50
LOWESS_SPAN = 1 / 5
LOWESS_ITERATIONS = 3  # R's lowess(iter = 3)


def r_lowess(
    x: np.ndarray, y: np.ndarray, span: float = LOWESS_SPAN, iterations: int = LOWESS_ITERATIONS
) -> np.ndarray:
    """R's `lowess(x, y, f = span, iter = iterations)$y` for `x` already increasing (as DESeq2's thetas are).

    Cleveland's robust locally weighted regression (J Am Stat Assoc 1979;74:829; "LOWESS", Am Stat 1981;35:54)
    with the rules of R's implementation (stats/src/lowess.c): the nearest `floor(span * n + 1e-7)` points
    (at least 2; the window slides right while that does not widen it, ties on the right join it), tricube
    weights (distances within 0.1 % of the radius weigh 1, beyond 99.9 % weigh 0), a local line unless
    the weighted spread of x is below 0.1 % of its range, points within delta = 1 % of the range of x of the
    last fitted one interpolated linearly, and `iterations` robustness passes with bisquare weights on
    6 x the median absolute residual (residuals within 0.1 % of it weigh 1, beyond 99.9 % weigh 0; no pass
    when it is below 1e-7 x the mean absolute residual). statsmodels' lowess omits those cut-offs (1e-8 off).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    if n != len(y):
        raise ValueError(f"r_lowess: x has {n} values and y {len(y)}")
    if np.any(np.diff(x) < 0):
        raise ValueError("r_lowess: x must be increasing (R's lowess returns the fit at the sorted x)")
    if n < 2:
        return y.copy()
    delta = 0.01 * float(x[-1] - x[0])
    width = max(2, min(n, int(span * n + 1e-7)))
    fitted = np.empty(n)
    robustness = np.ones(n)
    for iteration in range(iterations + 1):
        left, right, last, i = 0, width - 1, -1, 0
        while True:
            if right < n - 1 and x[i] - x[left] > x[right + 1] - x[i]:
                left, right = left + 1, right + 1
                continue
            value = _local_fit(x, y, i, left, right, robustness if iteration > 0 else None)
            fitted[i] = y[i] if value is None else value
            if last < i - 1:  # points skipped within delta: linear interpolation
                between = np.arange(last + 1, i)
                share = (x[between] - x[last]) / (x[i] - x[last])
                fitted[between] = share * fitted[i] + (1.0 - share) * fitted[last]
            last = i
            cut = x[last] + delta
            i = last + 1
            while i < n and x[i] <= cut:
                if x[i] == x[last]:
                    fitted[i] = fitted[last]
                    last = i
                i += 1
            i = max(last + 1, i - 1)
            if last >= n - 1:
                break
        residuals = y - fitted
        if iteration == iterations:
            break
        absolute = np.abs(residuals)
        ordered = np.sort(absolute)
        scale = 3.0 * (ordered[n // 2] + ordered[n - n // 2 - 1]) if n % 2 == 0 else 6.0 * ordered[n // 2]
        if scale < 1e-7 * float(np.mean(absolute)):
            break
        robustness = np.where(
            absolute <= 0.001 * scale,
            1.0,
            np.where(absolute <= 0.999 * scale, (1.0 - (absolute / scale) ** 2) ** 2, 0.0),
        )
    return fitted


def _local_fit(
    x: np.ndarray, y: np.ndarray, i: int, left: int, right: int, robustness: np.ndarray | None
) -> float | None:
    """The local weighted line at x[i] over the window [left, right] (extended over ties on the right); None
    when every weight is 0."""
    n = len(x)
    radius = max(x[i] - x[left], x[right] - x[i])
    weights = []
    j = left
    while j < n:
        distance = abs(x[j] - x[i])
        if distance <= 0.999 * radius:
            weight = 1.0 if distance <= 0.001 * radius else (1.0 - (distance / radius) ** 3) ** 3
            weights.append(weight * robustness[j] if robustness is not None else weight)
        elif x[j] > x[i]:
            break
        else:
            weights.append(0.0)
        j += 1
    total = 0.0
    for weight in weights:  # summed in order, as R does
        total += weight
    if total <= 0.0:
        return None
    w = np.array(weights) / total
    xs = x[left : left + len(w)]
    if radius > 0.0:
        centre = float(np.dot(w, xs))
        spread = float(np.dot(w, (xs - centre) ** 2))
        if np.sqrt(spread) > 0.001 * (x[-1] - x[0]):
            w = w * ((x[i] - centre) / spread * (xs - centre) + 1.0)
    return float(np.dot(w, y[left : left + len(w)]))


@dataclass(frozen=True)
class FilteredPadj:
    padj: pd.Series  # NA below the chosen threshold and where the p-value is NA
    theta: float  # the chosen quantile of the means
    threshold: float  # R's metadata(res)$filterThreshold: the mean at that quantile
    rejections: np.ndarray  # rejections at alpha for each theta (R's metadata(res)$filterNumRej)


def independent_filtering(base_mean: pd.Series, p_values: pd.Series, alpha: float) -> FilteredPadj:
    """DESeq2's `pvalueAdjustment(independentFiltering = TRUE, filter = baseMean, pAdjustMethod = "BH")`."""
    from .numerics import bh_fdr

    means = np.asarray(base_mean, dtype=np.float64)
    p = np.asarray(p_values, dtype=np.float64)
    lower = float(np.mean(means == 0))
    upper = 0.95 if lower < 0.95 else 1.0
    thetas = np.linspace(lower, upper, THETAS)
    cutoffs = np.quantile(means, thetas)  # R's quantile type 7
    tested = ~np.isnan(p)
    adjusted = np.full((len(means), THETAS), np.nan)
    for i, cutoff in enumerate(cutoffs):
        use = (means >= cutoff) & tested  # p.adjust leaves NA p-values out of n, as this does
        if use.any():
            adjusted[use, i] = bh_fdr(p[use])
    rejections = np.sum(adjusted < alpha, axis=0)
    if rejections.max() <= 10:
        chosen = 0
    else:
        fit = r_lowess(thetas, rejections)
        positive = rejections > 0
        rmse = float(np.sqrt(np.mean((rejections[positive] - fit[positive]) ** 2)))
        above = np.flatnonzero(rejections > fit.max() - rmse)
        chosen = int(above[0]) if above.size else 0
    padj = pd.Series(adjusted[:, chosen], index=base_mean.index)
    return FilteredPadj(padj, float(thetas[chosen]), float(cutoffs[chosen]), rejections)


@cache
def deseq_stats_class() -> type:
    """PyDESeq2's `DeseqStats` with DESeq2's independent filtering (R's lowess) in place of its own."""
    from pydeseq2.ds import DeseqStats

    class RFilteringDeseqStats(DeseqStats):
        def _independent_filtering(self) -> None:
            if not hasattr(self, "p_values"):
                self.run_wald_test()
            filtered = independent_filtering(self.base_mean, self.p_values, self.alpha)
            self.padj = filtered.padj
            self.filter_threshold = filtered.threshold

    return RFilteringDeseqStats
