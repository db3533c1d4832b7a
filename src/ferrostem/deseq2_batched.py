"""DESeq2's per-gene fits done for all genes at once, plugged into PyDESeq2's `Inference` interface.

PyDESeq2 (Muzellec et al., Bioinformatics 2023) runs DESeq2's pipeline (Love, Huber & Anders, Genome Biol
2014) with array code everywhere except four per-gene steps, each a Python loop of small scipy problems:
the initial means (`lin_reg_mu`), the NB GLM (`irls`), the dispersion optimisation (`alpha_mle`, run for the
gene-wise and the MAP dispersions) and the Wald test (`wald_test`). The design has few columns, so every
gene's p x p system is a slice of one (genes, p, p) array: this module solves them together, in gene blocks
spread over threads (numpy and scipy ufuncs release the GIL). Size factors, trend, prior variance,
dispersion outliers, Cook's distances and outlier replacement and refit stay PyDESeq2's own (already
vectorised) code; the trend fit follows DESeq2's `estimateDispersionsFit` rules (`BatchedDeseqDataSet`), and the
independent filtering R's lowess (`deseq2_filtering`, both engines).

Each rule, with DESeq2 1.38's source (R/core.R, src/DESeq2.cpp) it follows:

- NB GLM: `fitNbinomGLMs` / `fitBeta` IRLS with ridge 1e-6 / log(2)^2 (natural-log scale), start from
  the least-squares fit of log(y/s + 0.1), stop when |dev - dev_old| / (|dev| + 0.1) < beta_tol, hat
  diagonals of W^1/2 X (X'WX + ridge)^-1 X' W^1/2 at the final mean (paper, "Wald test" and "Cook's distance").
- Dispersions: `fitDisp` maximises the Cox-Reid adjusted profile log-likelihood
  l(a) - 1/2 log det(X'WX), W = mu / (1 + a mu), over log a (paper, equation 6; `estimateDispersionsGeneEst`),
  and for the MAP estimate adds the log-normal prior -(log a - log a_trend)^2 / (2 s^2) (paper, equation 7;
  `estimateDispersionsMAP`). DESeq2's Armijo line search is run for all genes of a block in lock-step
  with its constants, start values, stopping rules and grid fallback (`_line_search`, `_grid_search`,
  `batched_alpha_mle`), so the estimates are R's (which stop short of the optimum for high-count genes),
  not a tighter optimum. Each step evaluates the log posterior (and its derivative) of the active genes in
  cache-sized gene chunks, with lgamma (digamma) once per distinct count of a gene (`_DistinctCounts`): the
  same values summed in the same order as on whole samples x genes arrays, so the same bits.
- Wald test: covariance (X'WX + ridge)^-1 X'WX (X'WX + ridge)^-1 of `fitBeta` with W at max(mu, 0.5),
  statistic beta / SE, two-sided normal p (`nbinomWaldTest`).
- Trend: `parametricDispersionFit` (gamma-family GLM with identity link of the gene-wise dispersions on
  1/baseMean, genes with gene-wise dispersion > 100 x minDisp only, refitted without genes whose ratio to
  the curve is outside [1e-4, 15], until sum(log(coef/old)^2) < 1e-6, at most 10 rounds; failure if a
  coefficient is not positive). DESeq2 then substitutes its locfit `localDispersionFit`, and so does
  `BatchedDeseqDataSet` (a warning says so): `locfit_trend` ports locfit's 1-D fit (vertex tree, local
  quadratics, Hermite interpolation). `fit_type="local"` asks for it directly (PyDESeq2 knows only
  "parametric" and "mean"); the Cook's refit keeps the parent's local trend, and the VST of a local trend is
  DESeq2's numerical integral (`locfit_trend.local_trend_vst`).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydeseq2 import utils as pd_utils
from pydeseq2.dds import DeseqDataSet
from pydeseq2.default_inference import DefaultInference
from scipy import special
from scipy.stats import norm

from .locfit_trend import LocfitFit, local_dispersion_fit, local_dispersion_trend, local_trend_vst
from .progress import ProgressReport

# fitNbinomGLMs: lambda = 1e-6 per column on the log2 scale, given to fitBeta as lambda / log(2)^2 (natural log)
LOG2_TO_LN_RIDGE = 1.0 / np.log(2) ** 2
RIDGE = 1e-6 * LOG2_TO_LN_RIDGE
WALD_MIN_MU = 0.5  # fitBeta's minmu (fitNbinomGLMs default): weights and covariance use max(mu, 0.5)
BLOCK_CELLS = 2_000_000  # samples x genes per block: a few such arrays per thread stay well under 100 MB


def _gene_blocks(n_samples: int, n_genes: int, p: int) -> list[slice]:
    per_block = max(64, BLOCK_CELLS // max(n_samples, p * p, 1))
    return [slice(start, min(start + per_block, n_genes)) for start in range(0, n_genes, per_block)]


def _map_blocks(function: Callable[[slice], Any], blocks: list[slice], n_cpus: int, label: str) -> list[Any]:
    """`function` over gene blocks (in threads when n_cpus > 1), with progress lines when it takes long."""
    n_genes = sum(block.stop - block.start for block in blocks)
    parts = []
    with (
        ProgressReport(label, n_genes, unit="genes", always=False) as progress,
        ThreadPoolExecutor(max_workers=max(1, n_cpus)) as pool,
    ):
        results = pool.map(function, blocks) if n_cpus > 1 and len(blocks) > 1 else map(function, blocks)
        for block, part in zip(blocks, results):
            parts.append(part)
            progress.add(block.stop - block.start)
    return parts


def _outer_columns(design: np.ndarray) -> np.ndarray:
    """n x p^2 products X_ip X_iq, so that sum_i w_ig X_ip X_iq for all genes is one matrix product."""
    n, p = design.shape
    return (design[:, :, None] * design[:, None, :]).reshape(n, p * p)


def _weighted_gram(weights: np.ndarray, outer: np.ndarray, p: int) -> np.ndarray:
    """X' diag(w_g) X for every gene g (weights: samples x genes) as a (genes, p, p) array."""
    return (weights.T @ outer).reshape(-1, p, p)


def nb_log_binomial_sums(counts: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """sum_j [lgamma(y_j + 1/a) - lgamma(y_j + 1) - lgamma(1/a)] per gene: the part of the NB log-likelihood
    that does not depend on the mean (computed once per IRLS fit, not once per iteration)."""
    r = 1.0 / alpha
    n = counts.shape[0]
    return (special.gammaln(counts + r) - special.gammaln(counts + 1)).sum(axis=0) - n * special.gammaln(r)


def nb_nll_per_gene(
    counts: np.ndarray, mu: np.ndarray, alpha: np.ndarray, log_binomial_sums: np.ndarray | None = None
) -> np.ndarray:
    """Negative log-likelihood of NB(mu, alpha) summed over samples, one value per gene (column)."""
    if log_binomial_sums is None:
        log_binomial_sums = nb_log_binomial_sums(counts, alpha)
    r = 1.0 / alpha
    log_term = np.log1p(alpha * mu)
    # y (log mu - log(r + mu)) = y (log(mu a) - log(1 + mu a))
    return -(
        log_binomial_sums - r * log_term.sum(axis=0) + (counts * (np.log(mu) + np.log(alpha) - log_term)).sum(axis=0)
    )


# ---------------------------------------------------------------------------------------------------------
# NB GLM (IRLS)


def batched_irls(
    counts: np.ndarray,
    size_factors: np.ndarray,
    design: np.ndarray,
    disp: np.ndarray,
    min_mu: float,
    beta_tol: float,
    min_beta: float = -30,
    max_beta: float = 30,
    maxiter: int = 250,
    n_cpus: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """PyDESeq2's `irls_solver` (DESeq2's fitBeta) for every gene at once.

    Returns (beta genes x p, mu samples x genes, hat diagonals samples x genes, converged). A gene whose
    IRLS diverges (|beta| > max_beta) or runs out of iterations is refitted by PyDESeq2's own per-gene
    solver, which then switches to L-BFGS-B exactly as it does on its own path.
    """
    # counts stay as given (PyDESeq2 passes integers) and become floats one block at a time, and every
    # block writes into the outputs: no second (samples x genes) copy of the counts, mu or hat diagonals
    counts = np.asarray(counts)
    design = np.asarray(design, dtype=float)
    size_factors = np.asarray(size_factors, dtype=float)
    disp = np.asarray(disp, dtype=float)
    n, p = design.shape
    n_genes = counts.shape[1]
    beta_out = np.empty((n_genes, p))
    mu_out = np.empty((n, n_genes))
    hat_out = np.empty((n, n_genes))
    converged_out = np.empty(n_genes, dtype=bool)
    outer = _outer_columns(design)
    ridge = np.eye(p) * RIDGE
    log_sf = np.log(size_factors)[:, None]
    full_rank = np.linalg.matrix_rank(design) == p
    if full_rank:
        q, r = np.linalg.qr(design)

    def fit(block: slice) -> None:
        y = np.asarray(counts[:, block], dtype=float)
        alpha = disp[block]
        genes = y.shape[1]
        if full_rank:
            beta = np.linalg.solve(r, q.T @ np.log(y / size_factors[:, None] + 0.1)).T
        else:
            beta = np.zeros((genes, p))
            with np.errstate(divide="ignore"):
                beta[:, 0] = np.log(y / size_factors[:, None]).mean(axis=0)
        mu = np.maximum(np.exp(design @ beta.T + log_sf), min_mu)
        dev = np.full(genes, 1000.0)
        binomial_sums = nb_log_binomial_sums(y, alpha)
        active = np.ones(genes, dtype=bool)
        failed = np.zeros(genes, dtype=bool)
        iteration = 0
        while active.any():
            idx = np.flatnonzero(active)
            m, ya, a = mu[:, idx], y[:, idx], alpha[idx]
            w = m / (1.0 + m * a)
            z = np.log(m) - log_sf + (ya - m) / m
            gram = _weighted_gram(w, outer, p) + ridge
            rhs = (w * z).T @ design
            beta_hat = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
            iteration += 1
            diverged = (np.abs(beta_hat) > max_beta).any(axis=1) | (iteration >= maxiter)
            if diverged.any():
                failed[idx[diverged]] = True
                active[idx[diverged]] = False
            keep = ~diverged
            idx, beta_hat = idx[keep], beta_hat[keep]
            if not len(idx):
                continue
            beta[idx] = beta_hat
            mu[:, idx] = np.maximum(np.exp(design @ beta_hat.T + log_sf), min_mu)
            new_dev = 2.0 * nb_nll_per_gene(y[:, idx], mu[:, idx], alpha[idx], binomial_sums[idx])
            ratio = np.abs(new_dev - dev[idx]) / (np.abs(new_dev) + 0.1)
            dev[idx] = new_dev
            active[idx[ratio <= beta_tol]] = False
        converged = np.ones(genes, dtype=bool)
        for j in np.flatnonzero(failed):
            beta[j], _, _, converged[j] = pd_utils.irls_solver(
                counts=y[:, j],
                size_factors=size_factors,
                design_matrix=design,
                disp=alpha[j],
                min_mu=min_mu,
                beta_tol=beta_tol,
                min_beta=min_beta,
                max_beta=max_beta,
                maxiter=maxiter,
            )
            mu[:, j] = np.maximum(size_factors * np.exp(design @ beta[j]), min_mu)
        w = mu / (1.0 + mu * alpha)
        inverse = np.linalg.inv(_weighted_gram(w, outer, p) + ridge)
        hat_out[:, block] = np.einsum("ip,gpq,iq->ig", design, inverse, design) * w
        mu_out[:, block] = np.exp(design @ beta.T + log_sf)
        beta_out[block] = beta
        converged_out[block] = converged

    _map_blocks(fit, _gene_blocks(n, n_genes, p), n_cpus, "DESeq2 GLM fit")
    return beta_out, mu_out, hat_out, converged_out


# ---------------------------------------------------------------------------------------------------------
# dispersions

DISP_KAPPA_0 = 1.0  # estimateDispersionsGeneEst / estimateDispersionsMAP defaults (DESeq2 1.38)
DISP_TOL = 1e-6
DISP_MAXIT = 100
ARMIJO_EPSILON = 1e-4  # fitDisp (src/DESeq2.cpp)
GRID_POINTS = 20  # fitDispGridWrapper / fitDispGrid
CHUNK_CELLS = 65_536  # samples x genes per log-posterior evaluation: a few 512 kB temporaries (L2-sized)


class _DistinctCounts:
    """Each gene's distinct counts (genes in order, as one flat array) and every sample's place among them.

    The log posterior and its derivative need lgamma(y + 1/a) and digamma(y + 1/a) for every sample; a
    gene's samples share few distinct counts (on TCGA-size cohorts a third as many as samples), so the
    special function is evaluated once per distinct count and read back for each sample (`per_sample`).
    """

    def __init__(self, counts: np.ndarray) -> None:
        by_gene = np.ascontiguousarray(counts.T)  # genes x samples
        n_genes, n = by_gene.shape
        bits = max(1, (n - 1).bit_length())
        keys = by_gene.astype(np.int64)  # the counts are integers: a sort of (count, sample) packed in an int64
        if by_gene.size and by_gene.min() >= 0 and by_gene.max() < 2.0 ** (62 - bits) and (keys == by_gene).all():
            keys <<= bits
            keys |= np.arange(n)
            keys.sort(axis=1)
            order = keys & ((1 << bits) - 1)
            keys >>= bits
            ordered = keys.astype(by_gene.dtype)
        else:
            order = np.argsort(by_gene, axis=1, kind="stable")
            ordered = np.take_along_axis(by_gene, order, axis=1)
        new = np.empty(ordered.shape, dtype=bool)
        new[:, 0] = True
        np.not_equal(ordered[:, 1:], ordered[:, :-1], out=new[:, 1:])
        self.values = ordered[new]  # row by row: gene after gene, each gene's distinct counts ascending
        self.per_gene = new.sum(axis=1)
        self.offsets = np.concatenate([[0], np.cumsum(self.per_gene)])
        ranks = np.cumsum(new, axis=1, dtype=np.int32)
        ranks -= 1
        rank_by_gene = np.empty_like(ranks)
        order += (np.arange(n_genes) * n)[:, None]
        rank_by_gene.ravel()[order.ravel()] = ranks.ravel()
        self.ranks = rank_by_gene.T  # samples x genes (gene by gene in memory): index among the gene's distinct

    def per_sample(self, function: Callable[[np.ndarray], np.ndarray], r: np.ndarray, genes: np.ndarray) -> np.ndarray:
        """function(y + r_g) for every sample (rows) of `genes` (sorted; columns), r_g one value per gene."""
        lengths = self.per_gene[genes]
        if genes[-1] - genes[0] + 1 == len(genes):
            low, high = self.offsets[genes[0]], self.offsets[genes[-1] + 1]
            values = self.values[low:high]
            starts = self.offsets[genes[0] : genes[-1] + 1] - low
            ranks = self.ranks[:, genes[0] : genes[-1] + 1]
        else:
            starts = np.cumsum(lengths) - lengths
            values = self.values[np.repeat(self.offsets[genes] - starts, lengths) + np.arange(lengths.sum())]
            ranks = self.ranks[:, genes]
        distinct = function(values + np.repeat(r, lengths))
        return distinct[ranks + starts.astype(np.int32)]


class _Posterior:
    """DESeq2's log_posterior and dlog_posterior (src/DESeq2.cpp) of log(alpha), for a block of genes.

    log posterior = sum_j [lgamma(y + 1/a) - lgamma(1/a) - y log(mu + 1/a) - (1/a) log(1 + mu a)]
                    - 1/2 log det(X' W X) [W = 1/(1/mu + a)] - (log a - m)^2 / (2 s2) [MAP only],
    the NB log-likelihood up to terms free of a, Cox-Reid adjusted (paper, equations 6 and 7).
    """

    def __init__(
        self,
        counts: np.ndarray,
        mu: np.ndarray,
        design: np.ndarray,
        outer: np.ndarray,
        prior_mean: np.ndarray | None,
        prior_var: float | None,
    ) -> None:
        # gene by gene in memory (Fortran order), as the samples x genes copies a[:, genes] are: every sum over
        # a gene's samples is numpy's pairwise sum of contiguous values, the same bits on views and copies
        self.counts, self.mu = np.asfortranarray(counts), np.asfortranarray(mu)
        self.design, self.outer = design, outer
        self.prior_mean, self.prior_var = prior_mean, prior_var
        self.n, self.p = design.shape
        self.count_sums = counts.sum(axis=0)
        self.distinct = _DistinctCounts(self.counts)
        # the weights W (and dW) of all genes evaluated at once, written chunk by chunk: X'WX is then one
        # matrix product over the evaluated genes, the same product (and bits) as on a samples x genes W
        self._weights = np.empty(counts.size)
        self._d_weights = np.empty(counts.size)

    def _buffer(self, flat: np.ndarray, n_genes: int) -> np.ndarray:
        return flat[: self.n * n_genes].reshape(n_genes, self.n).T

    def _columns(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Counts and means of `genes` (sorted): views when they are consecutive, else small copies."""
        if genes[-1] - genes[0] + 1 == len(genes):
            columns = slice(int(genes[0]), int(genes[-1]) + 1)
            return self.counts[:, columns], self.mu[:, columns]
        return self.counts[:, genes], self.mu[:, genes]

    def _chunks(self, n_genes: int) -> list[slice]:
        """Chunks of about CHUNK_CELLS samples x genes: the temporaries of an evaluation stay in the cache
        (and in the allocator's free lists) instead of being samples x genes arrays paged in on every call.
        Every gene's sums over samples are the same operations in the same order as on the whole block."""
        width = max(1, CHUNK_CELLS // self.n)
        return [slice(start, min(start + width, n_genes)) for start in range(0, n_genes, width)]

    def _chunk_terms(self, log_alpha: np.ndarray, genes: np.ndarray) -> Iterator[tuple[Any, ...]]:
        """Per chunk of `genes`: the chunk, its genes, their counts and means, alpha, 1/alpha and mu * alpha."""
        for chunk in self._chunks(len(genes)):
            part = genes[chunk]
            y, mu = self._columns(part)
            alpha = np.exp(log_alpha[chunk])
            yield chunk, part, y, mu, alpha, 1.0 / alpha, mu * alpha

    # Both use y log(mu + 1/a) = y (log(1/a) + log(1 + mu a)) and sum_j lgamma(1/a) = n lgamma(1/a), so
    # that each sample costs one log1p, and lgamma (digamma) is evaluated once per distinct count.
    def value(self, log_alpha: np.ndarray, genes: np.ndarray) -> np.ndarray:
        n_genes = len(genes)
        ll = np.empty(n_genes)
        weights = self._buffer(self._weights, n_genes)
        for chunk, part, y, mu, alpha, r, mu_alpha in self._chunk_terms(log_alpha, genes):
            log_term = np.log1p(mu_alpha)
            ll[chunk] = (
                self.distinct.per_sample(special.gammaln, r, part).sum(axis=0)
                - self.n * special.gammaln(r)
                - (y * log_term).sum(axis=0)
                + np.log(alpha) * self.count_sums[part]
                - r * log_term.sum(axis=0)
            )
            np.divide(mu, 1.0 + mu_alpha, out=weights[:, chunk])
        cr = -0.5 * np.linalg.slogdet(_weighted_gram(weights, self.outer, self.p))[1]
        if self.prior_mean is not None:
            return ll + cr - 0.5 * (log_alpha - self.prior_mean[genes]) ** 2 / self.prior_var
        return ll + cr

    def derivative(self, log_alpha: np.ndarray, genes: np.ndarray) -> np.ndarray:
        n_genes = len(genes)
        total = np.empty(n_genes)
        weights, d_weights = self._buffer(self._weights, n_genes), self._buffer(self._d_weights, n_genes)
        for chunk, part, y, mu, alpha, r, mu_alpha in self._chunk_terms(log_alpha, genes):
            inverse_one_plus = 1.0 / (1.0 + mu_alpha)
            # sum_j [digamma(r) + log(1 + mu a) - mu a / (1 + mu a) - digamma(y + r) + y / (mu + r)]
            total[chunk] = (
                self.n * special.digamma(r)
                + np.log1p(mu_alpha).sum(axis=0)
                - self.n
                + inverse_one_plus.sum(axis=0)
                - self.distinct.per_sample(special.digamma, r, part).sum(axis=0)
                + alpha * (y * inverse_one_plus).sum(axis=0)
            )
            w = np.multiply(mu, inverse_one_plus, out=weights[:, chunk])
            np.negative(w * w, out=d_weights[:, chunk])
        alpha = np.exp(log_alpha)
        r = 1.0 / alpha
        gram = _weighted_gram(weights, self.outer, self.p)
        d_gram = _weighted_gram(d_weights, self.outer, self.p)
        cr = -0.5 * np.einsum("gij,gji->g", np.linalg.inv(gram), d_gram)
        result = (r * r * total + cr) * alpha
        if self.prior_mean is not None:
            return result - (log_alpha - self.prior_mean[genes]) / self.prior_var
        return result


def _line_search(
    post: _Posterior, log_alpha: np.ndarray, min_log_alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """DESeq2's fitDisp for all genes of a block in lock-step: Armijo line search along the gradient.

    Step kappa (start 1, halved on rejection, x1.1 after an acceptance but at most 1, halved every 5th
    acceptance), log(alpha) kept in [-30, 10], stop when an accepted step gains < 1e-6 or log(alpha) falls
    below min_log_alpha, at most 100 steps. Returns log(alpha), the number of steps (DESeq2's `iter`), the
    final log posterior and the log posterior at the start.
    """
    genes = len(log_alpha)
    a = log_alpha.copy()
    everyone = np.arange(genes)
    lp = post.value(a, everyone)
    start_lp = lp.copy()
    dlp = post.derivative(a, everyone)
    kappa = np.full(genes, DISP_KAPPA_0)
    iterations = np.zeros(genes, dtype=int)
    accepts = np.zeros(genes, dtype=int)
    active = np.ones(genes, dtype=bool)
    for _ in range(DISP_MAXIT):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        iterations[idx] += 1
        a_i, d_i, k_i = a[idx], dlp[idx], kappa[idx]
        proposal = a_i + k_i * d_i
        with np.errstate(divide="ignore", invalid="ignore"):
            k_i = np.where(proposal < -30.0, (-30.0 - a_i) / d_i, k_i)
            k_i = np.where(proposal > 10.0, (10.0 - a_i) / d_i, k_i)
        step = a_i + k_i * d_i
        lp_new = post.value(step, idx)
        accept = -lp_new <= -lp[idx] - k_i * ARMIJO_EPSILON * d_i**2
        rejected = idx[~accept]
        kappa[rejected] = k_i[~accept] / 2.0
        took = idx[accept]
        if not len(took):
            continue
        accepts[took] += 1
        a[took] = step[accept]
        change = lp_new[accept] - lp[took]
        lp[took] = lp_new[accept]
        stop = (change < DISP_TOL) | (a[took] < min_log_alpha)
        active[took[stop]] = False
        going = took[~stop]
        if len(going):
            dlp[going] = post.derivative(a[going], going)
            k_going = np.minimum(k_i[accept][~stop] * 1.1, DISP_KAPPA_0)
            k_going = np.where(accepts[going] % 5 == 0, k_going / 2.0, k_going)
            kappa[going] = k_going
    return a, iterations, lp, start_lp


def _grid_search(post: _Posterior, genes: np.ndarray, n_samples: int) -> np.ndarray:
    """DESeq2's fitDispGrid: best of 20 log(alpha) in [log 1e-8, log max(10, n)], then of 20 around it."""
    grid = np.linspace(np.log(1e-8), np.log(max(10, n_samples)), GRID_POINTS)
    delta = grid[1] - grid[0]
    values = np.stack([post.value(np.full(len(genes), g), genes) for g in grid])
    best = grid[np.argmax(values, axis=0)]
    fine = best[None, :] + np.linspace(-delta, delta, GRID_POINTS)[:, None]
    values = np.stack([post.value(fine[t], genes) for t in range(GRID_POINTS)])
    return fine[np.argmax(values, axis=0), np.arange(len(genes))]


def batched_alpha_mle(
    counts: np.ndarray,
    design: np.ndarray,
    mu: np.ndarray,
    alpha_hat: np.ndarray,
    min_disp: float,
    max_disp: float,
    prior_disp_var: float | None = None,
    cr_reg: bool = True,
    prior_reg: bool = False,
    n_cpus: int = 1,
    min_mu: float = 0.5,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """DESeq2's dispersion fits for all genes: the gene-wise estimate, or with `prior_reg` the MAP one.

    Gene-wise (estimateDispersionsGeneEst): line search from alpha_hat (PyDESeq2's moments start, as R's
    min(rough, moments) clipped to the bounds); a gene whose search does not converge (100 steps) or stops
    at its first step is re-estimated on DESeq2's grid when its estimate exceeds 10 x min_disp.
    MAP (estimateDispersionsMAP): prior mean log(alpha_hat) (the trend), prior variance prior_disp_var,
    line search from `start` (R's dispInit: the gene-wise estimate where it exceeds 0.1 x trend, else the
    trend; alpha_hat when not given), grid when the search does not converge. Results are clipped to
    [min_disp, max_disp]; the means are bounded below by min_mu as in R (minmu = 0.5). Returns
    (dispersions, converged), converged meaning the line search stopped on its own.
    """
    if not cr_reg:
        raise ValueError("DESeq2's dispersion fits use the Cox-Reid adjustment (cr_reg=True)")
    if prior_reg and prior_disp_var is None:
        raise ValueError("prior_disp_var is required for the MAP dispersions (prior_reg=True)")
    # counts and means are converted (and the means bounded) one block at a time: no full-size copies
    counts, mu = np.asarray(counts), np.asarray(mu)
    design = np.asarray(design, dtype=float)
    alpha_hat = np.asarray(alpha_hat, dtype=float)
    initial = np.log(alpha_hat if start is None else np.asarray(start, dtype=float))
    n, p = design.shape
    outer = _outer_columns(design)
    min_log_alpha = np.log(min_disp / 10)

    def fit(block: slice) -> tuple[np.ndarray, np.ndarray]:
        prior_mean = np.log(alpha_hat[block]) if prior_reg else None
        post = _Posterior(
            np.array(counts[:, block], dtype=float, order="F"),
            np.maximum(np.asarray(mu[:, block], dtype=float, order="F"), min_mu),
            design,
            outer,
            prior_mean,
            prior_disp_var,
        )
        first = initial[block]
        log_alpha, iterations, last, start_lp = _line_search(post, first, min_log_alpha)
        converged = iterations < DISP_MAXIT
        if prior_reg:
            refit = ~converged
        else:
            # estimateDispersionsGeneEst (niter = 1): a search that gains less than |lp| / 1e6 keeps its start
            no_increase = last < start_lp + np.abs(start_lp) / 1e6
            log_alpha[no_increase] = first[no_increase]
            converged &= iterations != 1
            refit = ~converged & (np.exp(log_alpha) > min_disp * 10)
        genes = np.flatnonzero(refit)
        if len(genes):
            log_alpha[genes] = _grid_search(post, genes, n)
        return np.clip(np.exp(log_alpha), min_disp, max_disp), converged

    blocks = _gene_blocks(n, counts.shape[1], p)
    parts = _map_blocks(fit, blocks, n_cpus, "DESeq2 dispersions")
    return np.concatenate([x[0] for x in parts]), np.concatenate([x[1] for x in parts])


# ---------------------------------------------------------------------------------------------------------
# Wald test


def batched_wald_test(
    design: np.ndarray,
    disp: np.ndarray,
    lfc: np.ndarray,
    mu: np.ndarray,
    ridge_factor: np.ndarray,
    contrast: np.ndarray,
    lfc_null: float,
    alt_hypothesis: Literal["greaterAbs", "lessAbs", "greater", "less"] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyDESeq2's `wald_test` for every gene: (p-values, statistics, standard errors), natural-log scale.

    As DESeq2's fitBeta / nbinomWaldTest: SE from (X'WX + ridge)^-1 X'WX (X'WX + ridge)^-1 with W at the
    mean bounded below by 0.5, and PyDESeq2's ridge (DESeq2's log2-scale lambda) put on the natural-log
    scale as R does (PyDESeq2 uses the unbounded mean and the log2-scale ridge: small differences for
    genes with means below 0.5).
    """
    design = np.asarray(design, dtype=float)
    n, p = design.shape
    outer = _outer_columns(design)
    mu, disp = np.asarray(mu), np.asarray(disp, dtype=float)
    gram = np.empty((mu.shape[1], p, p))
    for block in _gene_blocks(n, mu.shape[1], p):  # the weights one block at a time: no full-size copies
        bounded = np.maximum(np.asarray(mu[:, block], dtype=float), WALD_MIN_MU)
        gram[block] = _weighted_gram(bounded / (1.0 + bounded * disp[None, block]), outer, p)
    ridge = np.asarray(ridge_factor, dtype=float) * LOG2_TO_LN_RIDGE
    hc = np.linalg.solve(gram + ridge, np.broadcast_to(contrast, (len(gram), p))[:, :, None])
    se = np.sqrt(np.einsum("gi,gij,gj->g", hc[:, :, 0], gram, hc[:, :, 0]))
    lfc = np.asarray(lfc, dtype=float)
    contrast = np.asarray(contrast, dtype=float)

    def greater(null: float) -> tuple[np.ndarray, np.ndarray]:
        stat = np.fmax((lfc - null) / se[:, None], 0) @ contrast
        return stat, norm.sf(stat)

    def less(null: float) -> tuple[np.ndarray, np.ndarray]:
        stat = np.fmin((lfc - null) / se[:, None], 0) @ contrast
        return stat, norm.sf(np.abs(stat))

    if alt_hypothesis is None:
        stat = (lfc - lfc_null) @ contrast / se
        return 2 * norm.sf(np.abs(stat)), stat, se
    if alt_hypothesis == "greater":
        stat, pvalue = greater(lfc_null)
    elif alt_hypothesis == "less":
        stat, pvalue = less(lfc_null)
    elif alt_hypothesis == "greaterAbs":
        stat = (np.sign(lfc) * np.fmax((np.abs(lfc) - lfc_null) / se[:, None], 0)) @ contrast
        pvalue = 2 * norm.sf(np.abs(stat))
    elif alt_hypothesis == "lessAbs":
        stat_above, p_above = greater(-abs(lfc_null))
        stat_below, p_below = less(abs(lfc_null))
        stat = np.where(np.abs(stat_above) <= np.abs(stat_below), stat_above, stat_below)
        pvalue = np.maximum(p_above, p_below)
    else:
        raise ValueError(f"alternative hypothesis {alt_hypothesis!r} is not greaterAbs, lessAbs, greater or less")
    return pvalue, stat, se


# ---------------------------------------------------------------------------------------------------------
# variance-stabilising transformation


def parametric_vst(normed_counts: np.ndarray, a0: float, a1: float) -> np.ndarray:
    """DESeq2's VST for the parametric trend a0 + a1/mu (Anders & Huber 2010; PyDESeq2's `vst_transform`).

    log2((1 + a1 + 2 a0 q + 2 sqrt(a0 q (1 + a1 + a0 q))) / (4 a0)) of the normalised counts q, the same
    expression as PyDESeq2's, evaluated one gene block at a time into the output (the whole-matrix
    expression holds about four temporary samples x genes arrays).
    """
    n, n_genes = normed_counts.shape
    out = np.empty((n, n_genes))
    for block in _gene_blocks(n, n_genes, 1):
        q = normed_counts[:, block]
        out[:, block] = np.log2((1 + a1 + 2 * a0 * q + 2 * np.sqrt(a0 * q * (1 + a1 + a0 * q))) / (4 * a0))
    return out


# ---------------------------------------------------------------------------------------------------------
# PyDESeq2 plug-ins


class LinearModelMuInference(DefaultInference):
    """PyDESeq2's DefaultInference with the initial means of all genes fitted in one least-squares solve.

    PyDESeq2 fits `fit_lin_mu` gene by gene (a scikit-learn LinearRegression per gene); DESeq2's
    `linearModelMu` is one matrix product, and so is this: mu = s * X (X'X)^-1 X' (y / s) clipped at min_mu.
    """

    def lin_reg_mu(
        self, counts: np.ndarray, size_factors: np.ndarray, design_matrix: np.ndarray, min_mu: float
    ) -> np.ndarray:
        normalised = counts / size_factors[:, None]
        coefficients, *_ = np.linalg.lstsq(np.asarray(design_matrix, dtype=float), normalised, rcond=None)
        return np.maximum(size_factors[:, None] * (design_matrix @ coefficients), min_mu)


def rough_dispersions(normed_counts: np.ndarray, design_matrix: np.ndarray) -> np.ndarray:
    """DESeq2's roughDispEstimate (PyDESeq2's fit_rough_dispersions) with one QR for all genes.

    sum_j ((y - m)^2 - m) / m^2 / (n - p), m = max(1, least-squares fit of the normalised counts).
    """
    design = np.asarray(design_matrix, dtype=float)
    n, p = design.shape
    if n == p:
        raise ValueError("as many samples as design columns: no replicates to estimate the dispersion")
    q, _ = np.linalg.qr(design)
    fitted = np.maximum(q @ (q.T @ normed_counts), 1.0)
    return np.maximum((((normed_counts - fitted) ** 2 - fitted) / fitted**2).sum(axis=0) / (n - p), 0.0)


class BatchedInference(LinearModelMuInference):
    """All four per-gene steps of PyDESeq2's inference done in gene blocks (see the module docstring)."""

    map_start: np.ndarray | None = None  # R's dispInit for the MAP search, set by BatchedDeseqDataSet

    def fit_rough_dispersions(  # type: ignore[override]
        self, normed_counts: np.ndarray, design_matrix: np.ndarray
    ) -> np.ndarray:
        return rough_dispersions(normed_counts, design_matrix)

    def irls(
        self,
        counts: np.ndarray,
        size_factors: np.ndarray,
        design_matrix: np.ndarray,
        disp: np.ndarray,
        min_mu: float,
        beta_tol: float,
        min_beta: float = -30,
        max_beta: float = 30,
        optimizer: Literal["BFGS", "L-BFGS-B"] = "L-BFGS-B",
        maxiter: int = 250,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return batched_irls(
            counts, size_factors, design_matrix, disp, min_mu, beta_tol, min_beta, max_beta, maxiter, n_cpus=self.n_cpus
        )

    def alpha_mle(
        self,
        counts: np.ndarray,
        design_matrix: np.ndarray,
        mu: np.ndarray,
        alpha_hat: np.ndarray,
        min_disp: float,
        max_disp: float,
        prior_disp_var: float | None = None,
        cr_reg: bool = True,
        prior_reg: bool = False,
        optimizer: Literal["BFGS", "L-BFGS-B"] = "L-BFGS-B",
    ) -> tuple[np.ndarray, np.ndarray]:
        start = self.map_start if prior_reg else None
        return batched_alpha_mle(
            counts,
            design_matrix,
            mu,
            alpha_hat,
            min_disp,
            max_disp,
            prior_disp_var,
            cr_reg,
            prior_reg,
            n_cpus=self.n_cpus,
            start=start,
        )

    def wald_test(
        self,
        design_matrix: np.ndarray,
        disp: np.ndarray,
        lfc: np.ndarray,
        mu: np.ndarray,
        ridge_factor: np.ndarray,
        contrast: np.ndarray,
        lfc_null: np.ndarray,
        alt_hypothesis: Literal["greaterAbs", "lessAbs", "greater", "less"] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return batched_wald_test(design_matrix, disp, lfc, mu, ridge_factor, contrast, float(lfc_null), alt_hypothesis)


def gamma_identity_glm(
    covariate: np.ndarray, targets: np.ndarray, start: np.ndarray, max_iterations: int = 25, epsilon: float = 1e-8
) -> tuple[np.ndarray, bool]:
    """R's glm(targets ~ covariate, family = Gamma(link = "identity"), start = start) by IRLS (glm.fit)."""
    design = np.column_stack([np.ones_like(covariate), covariate])
    coefs = np.asarray(start, dtype=float)
    mu = design @ coefs
    deviance_old = np.inf
    for _ in range(max_iterations):
        weights = 1.0 / mu**2  # Gamma variance mu^2, identity link: working response = targets
        gram = design.T @ (design * weights[:, None])
        coefs = np.linalg.solve(gram, design.T @ (weights * targets))
        mu = design @ coefs
        if (mu <= 0).any():
            return coefs, False
        deviance = 2 * np.sum(-np.log(targets / mu) + (targets - mu) / mu)
        if abs(deviance - deviance_old) / (abs(deviance) + 0.1) < epsilon:
            return coefs, True
        deviance_old = deviance
    return coefs, False


def parametric_dispersion_fit(means: np.ndarray, dispersions: np.ndarray) -> np.ndarray | None:
    """DESeq2's parametricDispersionFit: coefficients (asymptDisp, extraPois), or None where R fails."""
    coefs = np.array([0.1, 1.0])
    for _ in range(11):
        ratio = dispersions / (coefs[0] + coefs[1] / means)
        good = (ratio > 1e-4) & (ratio < 15)
        old = coefs
        coefs, converged = gamma_identity_glm(1.0 / means[good], dispersions[good], old)
        if not (coefs > 0).all():
            return None
        if np.sum(np.log(coefs / old) ** 2) < 1e-6 and converged:
            return coefs
    return None


def _local_fit(stored: dict[str, Any]) -> LocfitFit | None:
    return LocfitFit.from_dict(stored) if stored else None


def _refit_data_set(*args: Any, local_trend: dict[str, Any] | None, **kwargs: Any) -> BatchedDeseqDataSet:
    """The Cook's-refit data set, carrying the parent's local trend (the trend is not refitted, as in R)."""
    refit = BatchedDeseqDataSet(*args, **kwargs)
    if local_trend is not None:
        refit.uns["local_trend"] = local_trend
    return refit


class BatchedDeseqDataSet(DeseqDataSet):
    """PyDESeq2's DeseqDataSet with DESeq2's trend rules and MAP start (with a `BatchedInference`).

    - trend: estimateDispersionsFit / parametricDispersionFit (see `parametric_dispersion_fit`), with
      R's fall-back to localDispersionFit, and fitType "local" (`locfit_trend`);
    - MAP: the line search starts at R's dispInit (gene-wise estimate where it exceeds 0.1 x trend, else
      the trend), PyDESeq2 starts at the trend;
    - the Cook's-outlier refit runs on this class too, so the refitted genes follow the same rules.
    """

    def fit_MAP_dispersions(self) -> None:
        if not isinstance(self.inference, BatchedInference):
            super().fit_MAP_dispersions()
            return
        if "prior_disp_var" not in self.uns:
            self.fit_dispersion_prior()
        nonzero = self.var["non_zero"].to_numpy()
        genewise = self.var["genewise_dispersions"].to_numpy()[nonzero]
        trend = self.var["fitted_dispersions"].to_numpy()[nonzero]
        start = np.where(genewise > 0.1 * trend, genewise, trend)
        start = np.where(np.isnan(start), trend, start)
        self.inference.map_start = start
        try:
            super().fit_MAP_dispersions()
        finally:
            self.inference.map_start = None

    def calculate_cooks(self) -> None:
        """PyDESeq2's calculate_cooks (DESeq2's calculateCooksDistance) one gene block at a time.

        The same operations in the same order, per gene (the trimmed-moments dispersion is per gene too), so
        the distances are PyDESeq2's to the bit; its whole-matrix version holds the normalised counts'
        copy, the residuals, the variances and the leverages of all genes at once (four more
        samples x genes arrays at the peak).
        """
        if not isinstance(self.inference, BatchedInference):
            super().calculate_cooks()
            return
        if "dispersions" not in self.var:
            self.fit_MAP_dispersions()
        design = self.obsm["design_matrix"]
        num_vars = design.shape[-1]
        columns = np.flatnonzero(self.var["non_zero"].to_numpy())
        normed, counts = self.layers["normed_counts"], self.X
        mu, hat = self.obsm["_mu_LFC"], self.obsm["_hat_diagonals"]
        cooks = np.full((self.n_obs, self.n_vars), np.nan)

        def block_cooks(block: slice) -> None:
            genes = columns[block]
            dispersions = pd_utils.robust_method_of_moments_disp(normed[:, genes], design)
            block_mu, block_hat = mu[:, block], hat[:, block]
            squared_pearson_res = counts[:, genes] - block_mu
            squared_pearson_res **= 2
            variance = block_mu**2
            variance *= dispersions[None, :]
            variance += block_mu
            squared_pearson_res /= variance
            squared_pearson_res /= num_vars
            leverage = 1 - block_hat
            leverage **= 2
            squared_pearson_res *= block_hat / leverage
            cooks[:, genes] = squared_pearson_res

        _map_blocks(block_cooks, _gene_blocks(self.n_obs, len(columns), num_vars), self.inference.n_cpus, "Cook's")
        if self.low_memory:
            del self.obsm["_mu_LFC"]
            del self.obsm["_hat_diagonals"]
        self.layers["cooks"] = cooks

    def _refit_without_outliers(self) -> None:
        import pydeseq2.dds as pydeseq2_dds

        # PyDESeq2 builds the refit's data set from its module-level class name; this class for the call
        original = pydeseq2_dds.DeseqDataSet
        pydeseq2_dds.DeseqDataSet = functools.partial(_refit_data_set, local_trend=self.uns.get("local_trend"))
        try:
            super()._refit_without_outliers()
        finally:
            pydeseq2_dds.DeseqDataSet = original
        # R's refit re-runs estimateDispersionsMAP, so the 2-SD outlier flag follows the refitted estimates
        refitted = self.var.get("refitted", pd.Series(False, index=self.var_names)).to_numpy(dtype=bool)
        if refitted.any():
            genewise = self.var["genewise_dispersions"].to_numpy()[refitted]
            trend = self.var["fitted_dispersions"].to_numpy()[refitted]
            flags = self.var["_outlier_genes"].to_numpy(dtype=bool).copy()
            flags[refitted] = np.log(genewise) > np.log(trend) + 2 * np.sqrt(self.uns["_squared_logres"])
            self.var["_outlier_genes"] = flags

    def fit_dispersion_trend(self, vst: bool = False) -> None:
        if (self.vst_fit_type if vst else self.fit_type) == "local":  # PyDESeq2 knows parametric and mean
            self._fit_local_dispersion_trend(vst)
            return
        super().fit_dispersion_trend(vst)

    def disp_function(self, x: Any) -> np.ndarray:
        if self.uns.get("disp_function_type") == "local":
            return local_dispersion_trend(_local_fit(self.uns["local_trend"]), np.asarray(x, float), self.min_disp)
        return super().disp_function(x)

    def vst_transform(self, counts: np.ndarray | None = None) -> np.ndarray:
        if getattr(self, "vst_fit_type", None) != "local":
            return super().vst_transform(counts)
        if counts is not None:
            raise NotImplementedError("the VST of a local trend transforms the data set's own counts only")
        if "vst_local_trend" not in self.uns:  # PyDESeq2's vst_fit fits only parametric trends
            self._fit_local_dispersion_trend(vst=True)
        fit = _local_fit(self.uns["vst_local_trend"])
        sizes = self.obs["size_factors"].to_numpy()
        return local_trend_vst(self.layers["normed_counts"], sizes, fit, self.min_disp)

    def _trend_inputs(self, vst: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """estimateDispersionsFit's inputs: which genes are non-zero, their normalised means and gene-wise
        dispersions, and which of those enter the trend fit (dispersion > 100 x minDisp)."""
        name = "vst_genewise_dispersions" if vst else "genewise_dispersions"
        if name not in self.var:
            self.fit_genewise_dispersions(vst)
        nonzero = self.var["non_zero"].to_numpy()
        means = self.var["_normed_means"].to_numpy()[nonzero]
        dispersions = self.var[name].to_numpy()[nonzero]
        use = (dispersions > 100 * self.min_disp) & np.isfinite(1.0 / means)
        if not use.any():
            raise ValueError(
                "all gene-wise dispersion estimates are within 2 orders of magnitude of the minimum "
                "value; DESeq2 refuses to fit a trend here (use a gene-wise estimate)"
            )
        return nonzero, means, dispersions, use

    def _store_fitted_dispersions(self, nonzero: np.ndarray, means: np.ndarray) -> None:
        fitted = np.full(self.n_vars, np.nan)
        fitted[nonzero] = self.disp_function(means)
        self.var["fitted_dispersions"] = fitted

    def _fit_local_dispersion_trend(self, vst: bool = False) -> None:
        """estimateDispersionsFit with fitType "local": localDispersionFit on the genes with gene-wise
        dispersion > 100 x minDisp (`locfit_trend`)."""
        nonzero, means, dispersions, use = self._trend_inputs(vst)
        fit = local_dispersion_fit(means[use], dispersions[use], self.min_disp)
        stored = {} if fit is None else fit.to_dict()
        if vst:
            self.uns["vst_local_trend"] = stored
            self.vst_fit_type = "local"
            return
        self.uns["local_trend"] = stored
        self.uns["disp_function_type"] = "local"
        self._store_fitted_dispersions(nonzero, means)

    def _fit_parametric_dispersion_trend(self, vst: bool = False) -> None:
        nonzero, means, dispersions, use = self._trend_inputs(vst)
        coefs = parametric_dispersion_fit(means[use], dispersions[use])
        if coefs is None:
            warnings.warn(
                "the parametric dispersion trend a0 + a1/mean did not fit; using DESeq2's local regression "
                "(localDispersionFit, locfit) instead, as R does",
                UserWarning,
                stacklevel=2,
            )
            self._fit_local_dispersion_trend(vst)
            return
        trend = pd.Series(coefs, index=["a0", "a1"])
        if vst:
            self.uns["vst_trend_coeffs"] = trend
            return
        self.uns["trend_coeffs"] = trend
        self.uns["disp_function_type"] = "parametric"
        self._store_fitted_dispersions(nonzero, means)
