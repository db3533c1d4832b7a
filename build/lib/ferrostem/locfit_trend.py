# SPDX-License-Identifier: GPL-2.0-or-later
# A port of locfit 1.5-9.7 (C sources by Catherine Loader, GPL >= 2): this file is under locfit's licence,
# unlike the rest of ferrostem (MIT); see the README's "Licence".
"""locfit's one-dimensional local regression, as DESeq2's `localDispersionFit` calls it, in numpy.

DESeq2 (Love, Huber & Anders, Genome Biol 2014; R/core.R `localDispersionFit`) fits the dispersion trend,
where the parametric curve a0 + a1/mean fails or `fitType = "local"` is asked for, with
`locfit(log(disp) ~ log(mean), weights = mean)` and its defaults, and predicts exp(predict(log mean)).
locfit (Loader, "Local Regression and Likelihood", Springer 1999; R package locfit 1.5-9.7, C sources by
Catherine Loader) with those defaults does, for one predictor:

- family "qgaussian", identity link: each local fit is a weighted least-squares fit of a local quadratic
  in (x - x0), basis (1, dx, dx^2 / 2) (`lf_fitfun.c` fitfun), weights = prior weight x kernel weight;
  the solve is one Newton step from (weighted mean, 0, 0) (`locfit.c` reginit/likereg, `m_max.c` max_nr)
  through the Hessian scaled to unit diagonal and eigen-decomposed, with eigenvalues at or below 1e-8 x
  the largest left undivided (`m_jacob.c` JAC_EIGD, `m_eigen.c` eig_solve, e_tol) - Loader ch. 2;
- bandwidth: nearest-neighbour fraction alpha = 0.7, h(x0) = the k-th smallest |x_i - x0| with
  k = floor(n alpha + 1e-12) (`lf_nbhd.c` nbhd/nbhd1, compbandwid, kordstat; `locfit.c` locfit), tricube
  kernel W(u) = (1 - |u|^3)^3 for |u| < 1 with u = |x_i - x0| / h (`weight.c` W, WTCUB), scale 1
  (locfit.raw's `scale = FALSE`);
- a parametric component: the same quadratic fitted globally about the weighted mean of x with the prior
  weights only is subtracted from every vertex fit and added back at prediction (`pcomp.c` compparcomp,
  subparcomp, addparcomp); inside the data range this leaves the prediction unchanged (cubic Hermite
  interpolation reproduces quadratics), outside it makes the extrapolation quadratic + linear;
- evaluation structure `ev = "tree"`, cut 0.8 (`ev_atree.c` atree_start/atree_grow/atree_split,
  `ev_main.c` newsplit, `startlf.c` set_flim): vertices at the ends of the data range are fitted (value and
  slope); a cell is halved while its length exceeds cut x the smallest positive vertex bandwidth of the
  cell, depth first; a new vertex whose cell is shorter than cut x both parents' bandwidths would be a
  pseudo-vertex (Hermite value at the midpoint, mean bandwidth; in one dimension only reachable with a
  zero bandwidth); at most floor(2 (5 / alpha / cut + 1)) vertices (`atree_guessnv`, maxk = 100);
- prediction (`predict.locfit`, `ev_interp.c` atree_int/rectcell_interp/hermite2): the point's leaf cell,
  cubic Hermite interpolation of the residual values and slopes at the cell's two vertices; beyond the
  range, the end vertex's residual value plus its slope times the distance (hermite2 for h < 0 or h > 1),
  plus the parametric component.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHA = 0.7  # locfit.raw alpha: nearest-neighbour fraction
CUT = 0.8  # rbox(cut = 0.8)
EIGEN_TOL = 1e-8  # m_eigen.c E_TOL


@dataclass(frozen=True)
class LocfitFit:
    """A fitted 1-D locfit: the tree's vertices and the fits there, less the parametric component."""

    vertices: np.ndarray  # sorted vertex positions
    values: np.ndarray  # local fit at the vertex minus the parametric component there
    slopes: np.ndarray  # local slope at the vertex minus the parametric component's slope
    parametric: np.ndarray  # global quadratic coefficients for (1, x - xbar, (x - xbar)^2 / 2)
    xbar: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """locfit's `predict` at x (any shape): Hermite inside the range, linear beyond it."""
        x = np.asarray(x, dtype=float)
        flat = x.ravel()
        v = self.vertices
        cell = np.clip(np.searchsorted(v, flat, side="right") - 1, 0, len(v) - 2)
        left, right = v[cell], v[cell + 1]
        length = right - left
        h = (flat - left) / length
        inside = (h >= 0) & (h <= 1)
        # hermite2: h(x) basis inside the cell; beyond it the end vertex's value and slope only
        phi1 = np.where(inside, h * h * (3 - 2 * h), (h > 1).astype(float))
        phi0 = np.where(inside, 1 - phi1, (h < 0).astype(float))
        phi2 = np.where(inside, h * (1 - h) * (1 - h), np.where(h < 0, h, 0.0)) * length
        phi3 = np.where(inside, h * h * (h - 1), np.where(h > 1, h - 1, 0.0)) * length
        residual = (
            phi0 * self.values[cell]
            + phi1 * self.values[cell + 1]
            + phi2 * self.slopes[cell]
            + phi3 * self.slopes[cell + 1]
        )
        return (residual + _quadratic(self.parametric, flat - self.xbar)).reshape(x.shape)

    def to_dict(self) -> dict[str, Any]:
        """Plain arrays (for AnnData `uns`, which h5ad can write)."""
        return {
            "vertices": self.vertices,
            "values": self.values,
            "slopes": self.slopes,
            "parametric": self.parametric,
            "xbar": float(self.xbar),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LocfitFit:
        return cls(
            vertices=np.asarray(values["vertices"], dtype=float),
            values=np.asarray(values["values"], dtype=float),
            slopes=np.asarray(values["slopes"], dtype=float),
            parametric=np.asarray(values["parametric"], dtype=float),
            xbar=float(values["xbar"]),
        )


def _quadratic(coef: np.ndarray, dx: np.ndarray) -> np.ndarray:
    return coef[0] + coef[1] * dx + coef[2] * dx * dx / 2


def _weighted_quadratic(x: np.ndarray, y: np.ndarray, kernel: np.ndarray, prior: np.ndarray, x0: float) -> np.ndarray:
    """One locfit local fit at x0: reginit's start (weighted mean, 0, 0), one max_nr Newton step through the
    JAC_EIGD solve. Sums run point by point in locfit's order (cumsum is sequential), products in its
    association, so that the Jacobi stop below sees the same matrix."""
    dx = x - x0
    design = np.column_stack([np.ones_like(dx), dx, dx * dx / 2])
    total = np.cumsum(kernel * prior)[-1]
    start = np.array([np.cumsum(kernel * (prior * y))[-1] / total, 0.0, 0.0])
    residual = prior * (y - start[0])
    gradient = np.cumsum(design * kernel[:, None] * residual[:, None], axis=0)[-1]
    weight = kernel * prior
    hessian = np.cumsum(weight[:, None, None] * design[:, :, None] * design[:, None, :], axis=0)[-1]
    diagonal = np.diag(hessian)
    scale = np.where(diagonal > 0, 1 / np.sqrt(np.where(diagonal > 0, diagonal, 1.0)), 0.0)
    eigenvalues, eigenvectors = _jacobi_eigen(hessian * np.outer(scale, scale))
    v = gradient * scale
    tol = EIGEN_TOL * eigenvalues.max()
    w = [_sequential_dot(eigenvectors[:, i], v) for i in range(3)]
    # eig_solve divides only the components whose eigenvalue exceeds the tolerance, leaving the rest as is
    w = np.array([w[i] / eigenvalues[i] if eigenvalues[i] > tol else w[i] for i in range(3)])
    step = np.array([_sequential_dot(eigenvectors[i], w) for i in range(3)]) * scale
    return start + 1.0 * step


def _sequential_dot(a: np.ndarray, b: np.ndarray) -> float:
    total = 0.0
    for left, right in zip(a.tolist(), b.tolist()):
        total += left * right
    return total


def _jacobi_eigen(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """m_eigen.c eig_dec: cyclic Jacobi rotations until every off-diagonal x^2 <= 1e-15 |x_ii x_jj| (at most
    20 sweeps). Its loose stop (off-diagonals up to ~3e-8 relative) moves the local fits by ~1e-9, so it is
    ported as is rather than replaced by LAPACK."""
    x = matrix.copy()
    d = len(x)
    p = np.eye(d)
    for _ in range(20):
        rotated = False
        for i in range(d):
            for j in range(i + 1, d):
                if x[i, j] ** 2 > 1.0e-15 * abs(x[i, i] * x[j, j]):
                    c = (x[j, j] - x[i, i]) / 2
                    s = -x[i, j]
                    r = np.sqrt(c * c + s * s)
                    c /= r
                    s = np.sqrt((1 - c) / 2) * (1.0 if s > 0 else -1.0)
                    c = np.sqrt((1 + c) / 2)
                    xi, xj = x[i].copy(), x[j].copy()
                    x[i], x[j] = xi * c + xj * s, xj * c - xi * s
                    xi, xj = x[:, i].copy(), x[:, j].copy()
                    x[:, i], x[:, j] = xi * c + xj * s, xj * c - xi * s
                    x[i, j] = x[j, i] = 0.0
                    pi, pj = p[:, i].copy(), p[:, j].copy()
                    p[:, i], p[:, j] = pi * c + pj * s, pj * c - pi * s
                    rotated = True
        if not rotated:
            break
    return np.diag(x).copy(), p


def _bandwidth(x: np.ndarray, x0: float, k: int) -> float:
    if k < 1:
        return 0.0
    return float(np.partition(np.abs(x - x0), k - 1)[k - 1])


class _TreeBuilder:
    def __init__(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float, cut: float):
        self.x, self.y, self.weights, self.cut = x, y, weights, cut
        self.k = int(len(x) * alpha + 1e-12)
        self.max_vertices = int((5 * (1 / alpha if alpha <= 1 else 1) / min(cut, 1.0) + 1) * 2)
        self.position: list[float] = []
        self.bandwidth: list[float] = []
        self.value: list[float] = []
        self.slope: list[float] = []
        self.range = (float(x.min()), float(x.max()))
        self.ordered = bool(np.all(np.diff(x) >= 0))  # startlf.c: lfd.ord selects nbhd1

    def fit_vertex(self, x0: float) -> int:
        if len(self.position) == self.max_vertices:
            raise ValueError(
                f"locfit trend: the evaluation tree needs more than {self.max_vertices} vertices "
                "(locfit stops with 'newsplit: out of vertex space')"
            )
        h = _bandwidth(self.x, x0, self.k)
        order = self.point_order(x0)
        distance = np.abs(self.x[order] - x0)
        if h > 0:
            u = distance / h
            v = 1 - u * u * u
            kernel = np.where(u < 1, v * v * v, 0.0)
        else:
            kernel = (distance == 0).astype(float)
        use = kernel > 0
        points = order[use]
        if not (self.weights[points] * kernel[use]).sum() > 0:
            raise ValueError(f"locfit trend: no data with positive weight around the fitting point {x0:.6g}")
        coef = _weighted_quadratic(self.x[points], self.y[points], kernel[use], self.weights[points], x0)
        self.position.append(x0)
        self.bandwidth.append(h)
        self.value.append(float(coef[0]))
        self.slope.append(float(coef[1]))
        return len(self.position) - 1

    def point_order(self, x0: float) -> np.ndarray:
        """The order in which locfit visits the data around x0: data order (nbhd), or for sorted data
        nbhd1's walk left from the point nearest x0 and then right."""
        n = len(self.x)
        if not self.ordered:
            return np.arange(n)
        xd = self.x
        if x0 <= xd[0]:
            z = 0
        elif x0 >= xd[n - 1]:
            z = n - 1
        else:
            left, right = 0, n - 1
            while right - left > 1:
                z = (right + left) // 2
                if xd[z] > x0:
                    right = z
                else:
                    left = z
            z = right if (x0 - xd[left]) > (xd[right] - x0) else left
        if xd[z] > x0:
            z -= 1
        return np.concatenate([np.arange(z, -1, -1), np.arange(z + 1, n)])

    def pseudo_vertex(self, left: int, right: int) -> int:
        """ev_main.c newsplit with pv, values as atree_int's exvvalpv (Hermite at the midpoint)."""
        length = self.position[right] - self.position[left]
        fl, fr = self.value[left], self.value[right]
        dl, dr = self.slope[left], self.slope[right]
        self.position.append((self.position[left] + self.position[right]) / 2)
        self.bandwidth.append((self.bandwidth[left] + self.bandwidth[right]) / 2)
        self.value.append((fl + fr) / 2 + length * (dl - dr) / 8)
        self.slope.append(1.5 * (fr - fl) / length - (dl + dr) / 4)
        return len(self.position) - 1

    def needs_split(self, left: int, right: int) -> bool:
        lo, hi = self.position[left], self.position[right]
        positive = [h for h in (self.bandwidth[left], self.bandwidth[right]) if h > 0]
        if positive:
            score = (hi - lo) / min(positive)
        else:
            score = 2 * (hi - lo) / (self.range[1] - self.range[0])
        return score > self.cut

    def grow(self, left: int, right: int) -> None:
        if not self.needs_split(left, right):
            return
        length = self.position[right] - self.position[left]
        if length < self.cut * min(self.bandwidth[left], self.bandwidth[right]):
            middle = self.pseudo_vertex(left, right)
        else:
            middle = self.fit_vertex((self.position[left] + self.position[right]) / 2)
        self.grow(left, middle)
        self.grow(middle, right)


def locfit_1d(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, *, alpha: float = ALPHA, cut: float = CUT
) -> LocfitFit:
    """`locfit(y ~ x, weights = weights)` with locfit's defaults (see the module docstring)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    weights = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    if not (x.shape == y.shape == weights.shape) or x.ndim != 1:
        raise ValueError("locfit trend: x, y and weights must be 1-D arrays of the same length")
    if len(x) < 2 or not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(weights).all()):
        raise ValueError("locfit trend: needs at least two points, all finite")
    if x.min() == x.max():
        raise ValueError("locfit trend: all x values are equal, there is no range to fit over")
    xbar = float(np.cumsum(x * weights)[-1] / np.cumsum(weights)[-1])  # compparcomp, point by point
    parametric = _weighted_quadratic(x, y, np.ones_like(x), weights, xbar)
    tree = _TreeBuilder(x, y, weights, alpha, cut)
    left = tree.fit_vertex(tree.range[0])
    right = tree.fit_vertex(tree.range[1])
    tree.grow(left, right)
    order = np.argsort(tree.position)
    position = np.asarray(tree.position)[order]
    global_at = _quadratic(parametric, position - xbar)
    global_slope = parametric[1] + parametric[2] * (position - xbar)
    return LocfitFit(
        vertices=position,
        values=np.asarray(tree.value)[order] - global_at,
        slopes=np.asarray(tree.slope)[order] - global_slope,
        parametric=parametric,
        xbar=xbar,
    )


def local_dispersion_fit(means: np.ndarray, dispersions: np.ndarray, min_disp: float) -> LocfitFit | None:
    """DESeq2's localDispersionFit: the locfit of log dispersion on log mean, weighted by the mean, over the
    genes with dispersion >= 10 x min_disp; None where no gene qualifies (R: min_disp everywhere)."""
    means = np.asarray(means, dtype=float)
    dispersions = np.asarray(dispersions, dtype=float)
    use = dispersions >= 10 * min_disp
    if not use.any():
        return None
    return locfit_1d(np.log(means[use]), np.log(dispersions[use]), means[use])


def local_dispersion_trend(fit: LocfitFit | None, means: np.ndarray, min_disp: float) -> np.ndarray:
    """The trend at these means: exp(predict(fit, log mean)), or min_disp where the fit is None."""
    means = np.asarray(means, dtype=float)
    if fit is None:
        return np.full(means.shape, float(min_disp))
    return np.exp(fit.predict(np.log(means)))


def fmm_spline(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R's `splinefun(x, y)` (method "fmm", Forsythe, Malcolm & Moler 1977; R stats/src/splines.c
    fmm_spline): the interpolating cubic whose end third derivatives match those of the cubics through
    the first and last four points. Returns (b, c, d): y_i + b_i t + c_i t^2 + d_i t^3 on [x_i, x_i+1)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(x)
    b, c, d = np.zeros(n), np.zeros(n), np.zeros(n)
    if n < 3:
        b[:] = (y[1] - y[0]) / (x[1] - x[0])
        return b, c, d
    nm1 = n - 1
    d[0] = x[1] - x[0]
    c[1] = (y[1] - y[0]) / d[0]
    for i in range(1, nm1):
        d[i] = x[i + 1] - x[i]
        b[i] = 2.0 * (d[i - 1] + d[i])
        c[i + 1] = (y[i + 1] - y[i]) / d[i]
        c[i] = c[i + 1] - c[i]
    b[0] = -d[0]
    b[nm1] = -d[n - 2]
    c[0] = c[nm1] = 0.0
    if n > 3:
        c[0] = c[2] / (x[3] - x[1]) - c[1] / (x[2] - x[0])
        c[nm1] = c[n - 2] / (x[nm1] - x[n - 3]) - c[n - 3] / (x[n - 2] - x[n - 4])
        c[0] = c[0] * d[0] * d[0] / (x[3] - x[0])
        c[nm1] = -c[nm1] * d[n - 2] * d[n - 2] / (x[nm1] - x[n - 4])
    for i in range(1, n):
        t = d[i - 1] / b[i - 1]
        b[i] = b[i] - t * d[i - 1]
        c[i] = c[i] - t * c[i - 1]
    c[nm1] = c[nm1] / b[nm1]
    for i in range(n - 2, -1, -1):
        c[i] = (c[i] - d[i] * c[i + 1]) / b[i]
    b[nm1] = (y[nm1] - y[n - 2]) / d[n - 2] + d[n - 2] * (c[n - 2] + 2.0 * c[nm1])
    for i in range(nm1):
        b[i] = (y[i + 1] - y[i]) / d[i] - d[i] * (c[i + 1] + 2.0 * c[i])
        d[i] = (c[i + 1] - c[i]) / d[i]
        c[i] = 3.0 * c[i]
    c[nm1] = 3.0 * c[nm1]
    d[nm1] = d[n - 2]
    return b, c, d


def fmm_spline_eval(x: np.ndarray, y: np.ndarray, coefficients: tuple, u: np.ndarray) -> np.ndarray:
    """splines.c spline_eval for "fmm": the piece of the interval holding u (the first or last piece beyond
    the knots)."""
    b, c, d = coefficients
    u = np.asarray(u, dtype=float)
    i = np.clip(np.searchsorted(x, u, side="right") - 1, 0, len(x) - 1)
    t = u - x[i]
    return y[i] + t * (b[i] + t * (c[i] + t * d[i]))


def local_trend_vst(
    normed_counts: np.ndarray, size_factors: np.ndarray, fit: LocfitFit | None, min_disp: float
) -> np.ndarray:
    """DESeq2's getVarianceStabilizedData for a local trend (R/methods.R; Anders & Huber, Genome Biol 2010):
    the integral of 1 / sqrt(trend(q) q^2 + mean(1/s) q) by the trapezoidal rule on 999 asinh-spaced
    points up to the largest normalised count, interpolated by an fmm spline in asinh(q), scaled so that
    the 95% and 99.9% quantiles of the gene means map to their log2. samples x genes in and out."""
    normed_counts = np.asarray(normed_counts, dtype=float)
    grid = np.sinh(np.linspace(np.arcsinh(0.0), np.arcsinh(normed_counts.max()), 1000))[1:]
    base_variance = local_dispersion_trend(fit, grid, min_disp) * grid**2 + np.mean(1 / size_factors) * grid
    integrand = 1 / np.sqrt(base_variance)
    knots = np.arcsinh((grid[1:] + grid[:-1]) / 2)
    values = np.cumsum((grid[1:] - grid[:-1]) * (integrand[1:] + integrand[:-1]) / 2)
    spline = fmm_spline(knots, values)

    def integral(q: np.ndarray) -> np.ndarray:
        return fmm_spline_eval(knots, values, spline, np.arcsinh(q))

    gene_means = normed_counts.mean(axis=0)
    h1, h2 = np.quantile(gene_means, 0.95), np.quantile(gene_means, 0.999)
    eta = (np.log2(h2) - np.log2(h1)) / (integral(h2) - integral(h1))
    xi = np.log2(h1) - eta * integral(h1)
    return eta * integral(normed_counts) + xi
