"""Cell-type fractions by deconvolution, and the immunophenoscore.

Each method is a pure function on a samples x genes matrix and declares the input scale it needs; `deconvolve`
checks the cohort's declared scale (the `uns["layer_scales"]` text of the layer it is given) and the values
before running it, so a method never runs on the wrong scale silently:
- quanTIseq (Finotello F et al. Genome Med 2019;11:34, doi:10.1186/s13073-019-0638-6): constrained least
  squares on the TIL10 signature, mRNA-content scaling, an "Other" fraction; needs TPM;
- a CIBERSORT-compatible nu-SVR (Newman AM et al. Nat Methods 2015;12:453, doi:10.1038/nmeth.3337) on a
  signature matrix the user supplies (LM22 is restricted: never downloaded), with its permutation p-value and
  the absolute score ("sig.score"); needs linear expression (TPM or linear intensities);
- the immunophenoscore (Charoentong P et al. Cell Rep 2017;18:248, doi:10.1016/j.celrep.2016.12.019) from its
  published gene weights; needs log2(TPM+1) (or log2 intensities).
EPIC (Racle J et al. eLife 2017) is not included: its reference profiles (TRef, BRef) are distributed under a
licence for non-commercial academic use only (see docs/deconvolution.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import FerrostemError, InputFormatError, ScaleError

InputScale = Literal["tpm", "linear", "log2"]
TPM_TOTAL = 1.0e6
TPM_SUM_TOLERANCE = 0.02  # a TPM sample sums to 1e6 over all genes; harmonisation only drops genes (sum <= 1e6)
LOG2_MAX = 30.0


class CoverageError(FerrostemError, ValueError):
    """Too few of a signature's genes are in the expression matrix to deconvolve."""


# ---------------------------------------------------------------------------------------------------
# Scales
# ---------------------------------------------------------------------------------------------------


def declared_scale(layer_scale: str) -> str:
    """The kind of a layer from its `uns["layer_scales"]` description: tpm, log2, counts, cpm or linear."""
    text = layer_scale.strip().lower()
    if text.startswith("log"):
        return "log2"
    if text.startswith("tpm"):
        return "tpm"
    if text.startswith("cpm"):
        return "cpm"
    if "count" in text:
        return "counts"
    if text.startswith("ratio"):
        return "ratio"
    return "linear"


def check_input_scale(expr: pd.DataFrame, layer_scale: str, required: InputScale, context: str) -> None:
    """Refuse a matrix whose declared scale or values do not fit `required`; the message names sample and gene.

    "tpm": declared TPM, non-negative, every sample summing to at most 1e6 (+2%): counts declared as TPM are
    refused. "linear": TPM, CPM or linear intensities (not counts, not ratios), non-negative. "log2": declared
    log, at most 30.
    """
    kind = declared_scale(layer_scale)
    accepted = {"tpm": {"tpm"}, "linear": {"tpm", "cpm", "linear"}, "log2": {"log2"}}[required]
    if kind not in accepted:
        needs = {
            "tpm": "TPM",
            "linear": "linear expression (TPM or linear intensities)",
            "log2": "log2 expression (log2(TPM+1) or log2 intensities)",
        }[required]
        raise ScaleError(f"{context}: needs {needs}, but the matrix given is {layer_scale!r}")
    values = expr.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise ScaleError(f"{context}: non-finite expression for sample {expr.index[row]} gene {expr.columns[col]}")
    if values.size == 0:
        raise ScaleError(f"{context}: the expression matrix is empty")
    if required == "log2":
        if values.max() > LOG2_MAX:
            row, col = np.unravel_index(int(values.argmax()), values.shape)
            raise ScaleError(
                f"{context}: declared {layer_scale!r} but sample {expr.index[row]} gene "
                f"{expr.columns[col]} is {values.max():.4g} (> {LOG2_MAX:g}); it looks linear"
            )
        return
    if values.min() < 0:
        row, col = np.unravel_index(int(values.argmin()), values.shape)
        raise ScaleError(
            f"{context}: declared {layer_scale!r} but sample {expr.index[row]} gene "
            f"{expr.columns[col]} is negative ({values.min():.4g}); it looks log-transformed"
        )
    if required == "tpm":
        totals = values.sum(axis=1)
        worst = int(totals.argmax())
        if totals[worst] > TPM_TOTAL * (1 + TPM_SUM_TOLERANCE):
            raise ScaleError(
                f"{context}: declared {layer_scale!r} but sample {expr.index[worst]} sums to "
                f"{totals[worst]:.4g} over all genes (TPM sums to 1e6): it looks like counts; give TPM"
            )


# ---------------------------------------------------------------------------------------------------
# Signature matrices and coverage
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """How many of a signature's genes the expression matrix has."""

    method: str
    genes_in_signature: int
    genes_found: int
    missing: tuple[str, ...]

    @property
    def fraction(self) -> float:
        return self.genes_found / self.genes_in_signature if self.genes_in_signature else 0.0

    def row(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "genes_in_signature": self.genes_in_signature,
            "genes_found": self.genes_found,
            "coverage": round(self.fraction, 4),
            "missing": ",".join(self.missing),
        }


def signature_coverage(
    method: str, signature_genes: Sequence[str], expression_genes: Sequence[str], min_coverage: float
) -> Coverage:
    """The coverage of a signature in a cohort; below `min_coverage` a CoverageError names the missing genes."""
    present = set(expression_genes)
    missing = tuple(g for g in signature_genes if g not in present)
    coverage = Coverage(method, len(signature_genes), len(signature_genes) - len(missing), missing)
    if coverage.fraction < min_coverage:
        shown = ", ".join(missing[:15]) + (f" and {len(missing) - 15} more" if len(missing) > 15 else "")
        raise CoverageError(
            f"{method}: only {coverage.genes_found} of {coverage.genes_in_signature} signature genes "
            f"({coverage.fraction:.0%}) are in the expression matrix, below the minimum "
            f"{min_coverage:.0%} (deconvolution.min_coverage); missing: {shown}"
        )
    return coverage


def read_signature_matrix(path: str, *, context: str) -> pd.DataFrame:
    """A genes x cell types signature matrix (tab-separated, genes in the first column, as LM22.txt)."""
    try:
        frame = pd.read_csv(path, sep="\t", index_col=0)
    except FileNotFoundError:
        raise InputFormatError(f"{context}: signature matrix {path} does not exist") from None
    if frame.shape[1] < 2 or frame.empty:
        raise InputFormatError(
            f"{context}: {path} must be tab-separated, genes x cell types with a header row; "
            f"read {frame.shape[0]} rows x {frame.shape[1]} columns"
        )
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    if numeric.isna().any().any():
        row, col = np.argwhere(numeric.isna().to_numpy())[0]
        raise InputFormatError(
            f"{context}: {path}: gene {frame.index[row]} cell type {frame.columns[col]} is not a "
            f"number ({frame.iat[row, col]!r})"
        )
    if frame.index.duplicated().any():
        raise InputFormatError(
            f"{context}: {path}: duplicate genes {sorted(frame.index[frame.index.duplicated()])[:5]}"
        )
    return numeric.astype(float)


# ---------------------------------------------------------------------------------------------------
# quanTIseq
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Til10:
    """quanTIseq's TIL10 signature (genes x 10 immune cell types, TPM), mRNA scaling factors, and the genes
    the reference implementation removes: noisy ones (RNA-seq) and those aberrantly high in TCGA tumours."""

    signature: pd.DataFrame
    mrna_scaling: pd.Series
    noisy_genes: tuple[str, ...]
    tumour_aberrant_genes: tuple[str, ...]


def load_til10() -> Til10:
    """The TIL10 files shipped in ferrostem/data/quantiseq (quanTIseq, BSD-3-Clause; see the README there)."""
    folder = resources.files("ferrostem.data").joinpath("quantiseq")

    def lines(name: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in folder.joinpath(name).read_text(encoding="utf-8").splitlines() if x.strip())

    with folder.joinpath("TIL10_signature.txt").open("r", encoding="utf-8") as handle:
        signature = pd.read_csv(handle, sep="\t", index_col=0)
    with folder.joinpath("TIL10_mRNA_scaling.txt").open("r", encoding="utf-8") as handle:
        scaling = pd.read_csv(handle, sep="\t", header=None, index_col=0).iloc[:, 0]
    return Til10(
        signature.astype(float),
        scaling.reindex(signature.columns).astype(float),
        lines("TIL10_rmgenes.txt"),
        lines("TIL10_TCGA_aberrant_immune_genes.txt"),
    )


def constrained_least_squares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin ||A x - b||^2 subject to x >= 0 and sum(x) <= 1 (limSolve::lsei as quanTIseq's DClsei calls it).

    The problem is convex: the non-negative least-squares solution is the answer when it sums to at most 1;
    otherwise the sum constraint is active and SLSQP solves the constrained problem from its rescaled start.
    """
    from scipy import optimize  # here, not at the top: the demo generator reads TIL10 through this module

    x, _ = optimize.nnls(a, b)
    if x.sum() <= 1.0:
        return x
    ata, atb = a.T @ a, a.T @ b
    result = optimize.minimize(
        lambda v: float(v @ ata @ v - 2 * atb @ v),
        x / x.sum(),
        jac=lambda v: 2 * (ata @ v - atb),
        method="SLSQP",
        bounds=[(0.0, None)] * len(x),
        constraints=[{"type": "ineq", "fun": lambda v: 1.0 - v.sum(), "jac": lambda v: -np.ones_like(v)}],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    if not result.success:
        raise RuntimeError(f"constrained least squares did not converge: {result.message}")
    return np.clip(result.x, 0.0, None)


def _quantiseq_fit(signature: pd.DataFrame, mixture: pd.DataFrame, scaling: pd.Series) -> pd.DataFrame:
    """DClsei per sample: A and b scaled by the 2-norm of A, mRNA-scaled estimates, Other = 1 - sum."""
    a = signature.to_numpy(dtype=float)
    norm = float(np.linalg.norm(a, 2))
    a = a / norm
    rows = []
    for _sample, b in mixture.iterrows():
        est = constrained_least_squares(a, b.to_numpy(dtype=float) / norm)
        total = est.sum()
        est = est / scaling.to_numpy()
        est = est / est.sum() * total if est.sum() > 0 else est
        rows.append(np.append(est, max(0.0, 1.0 - est.sum())))
    return pd.DataFrame(rows, index=mixture.index, columns=[*signature.columns, "Other"])


def quantiseq(
    tpm: pd.DataFrame,
    *,
    tumour: bool = True,
    remove_noisy_genes: bool = True,
    mrna_scaling: bool = True,
    min_coverage: float = 0.5,
    til10: Til10 | None = None,
) -> tuple[pd.DataFrame, Coverage]:
    """quanTIseq cell fractions (samples x 10 TIL10 cell types + Other, rows summing to 1) from TPM.

    As the reference implementation (quanTIseq_decon.R, method "lsei"): the mixture is renormalised to TPM over
    all its genes; the noisy TIL10 genes are removed (RNA-seq) and, for tumour samples, the genes aberrantly
    expressed in TCGA tumours; each sample is fitted by constrained least squares; the estimates are divided
    by the cell types' mRNA content and rescaled to their sum, and the rest is "Other". Where Tregs come out
    below 2%, the fit is repeated without CD4 T cells and the two Treg estimates are averaged (CD4 T cells lose
    that amount). The reference un-logs data whose maximum is below 50 and re-maps gene symbols with HGNC;
    here the scale is checked instead (deconvolve) and the symbols are the cohort's harmonised ones.
    """
    til10 = til10 or load_til10()
    signature = til10.signature
    removed = set(til10.noisy_genes if remove_noisy_genes else ()) | set(til10.tumour_aberrant_genes if tumour else ())
    signature = signature.loc[~signature.index.isin(removed)]
    coverage = signature_coverage("quantiseq", list(signature.index), list(tpm.columns), min_coverage)
    totals = tpm.sum(axis=1)
    empty = totals[totals <= 0]
    if len(empty):
        raise InputFormatError(f"quantiseq: sample {empty.index[0]} has no expression (sum of TPM is 0)")
    mixture = tpm.div(totals, axis=0) * TPM_TOTAL
    genes = [g for g in signature.index if g in mixture.columns]
    signature, mixture = signature.loc[genes], mixture[genes]
    scaling = til10.mrna_scaling if mrna_scaling else pd.Series(1.0, index=til10.signature.columns)
    fractions = _quantiseq_fit(signature, mixture, scaling)
    if {"Tregs", "T.cells.CD4"} <= set(signature.columns):
        low = fractions["Tregs"] < 0.02
        if low.any():
            without_cd4 = signature.drop(columns="T.cells.CD4")
            refit = _quantiseq_fit(without_cd4, mixture.loc[low], scaling.drop("T.cells.CD4"))
            tregs = (refit["Tregs"] + fractions.loc[low, "Tregs"]) / 2
            fractions.loc[low, "Tregs"] = tregs
            fractions.loc[low, "T.cells.CD4"] = np.maximum(0.0, fractions.loc[low, "T.cells.CD4"] - tregs)
    fractions = fractions.div(fractions.sum(axis=1), axis=0)
    fractions = fractions.rename_axis("sample_id")
    return fractions, coverage


# ---------------------------------------------------------------------------------------------------
# CIBERSORT-compatible nu-SVR
# ---------------------------------------------------------------------------------------------------

CIBERSORT_NU = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class SvrFit:
    weights: np.ndarray  # non-negative, summing to 1
    rmse: float
    correlation: float


def cibersort_core(x: np.ndarray, y: np.ndarray) -> SvrFit:
    """CIBERSORT's CoreAlg: nu-SVR (linear kernel, C = 1, libsvm's default tolerance 0.001, as e1071::svm with
    scale = FALSE) for nu in 0.25, 0.5, 0.75; negative weights set to 0, the rest normalised to sum 1; the nu
    whose reconstruction has the lowest RMSE against the standardised mixture wins."""
    from sklearn.svm import NuSVR  # here: scikit-learn takes ~2 s to import, and CIBERSORT needs the user's LM22

    best: SvrFit | None = None
    for nu in CIBERSORT_NU:
        model = NuSVR(kernel="linear", nu=nu, C=1.0, tol=1e-3).fit(x, y)
        weights = np.clip(np.asarray(model.coef_, dtype=float).ravel(), 0.0, None)
        if weights.sum() <= 0:
            continue
        weights = weights / weights.sum()
        fitted = x @ weights
        rmse = float(np.sqrt(np.mean((fitted - y) ** 2)))
        correlation = float(np.corrcoef(fitted, y)[0, 1]) if fitted.std() > 0 else float("nan")
        if best is None or rmse < best.rmse:
            best = SvrFit(weights, rmse, correlation)
    if best is None:
        return SvrFit(np.full(x.shape[1], np.nan), float("nan"), float("nan"))
    return best


def _standardise(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / values.std(ddof=1)


@dataclass
class CibersortResult:
    fractions: pd.DataFrame  # samples x cell types, rows summing to 1
    absolute: pd.DataFrame  # fractions x median(signature genes) / median(whole mixture), CIBERSORT's sig.score
    statistics: pd.DataFrame  # p_value, correlation, rmse, absolute_score
    coverage: Coverage
    null_distribution: np.ndarray = field(repr=False)


def cibersort(
    expr: pd.DataFrame, signature: pd.DataFrame, *, permutations: int = 100, seed: int = 1, min_coverage: float = 0.5
) -> CibersortResult:
    """CIBERSORT (CIBERSORT.R 1.04, QN = FALSE as recommended for RNA-seq) on a user's signature matrix.

    The signature is standardised by the mean and sd of all its values, each mixture (restricted to the
    signature genes) by its own; p-value = 1 - (position of the closest null correlation) / permutations, the
    null from `permutations` random mixtures drawn from the cohort's values at the signature genes. Absolute
    mode "sig.score": fractions x median expression of the sample's signature genes / max(median of the whole
    mixture matrix, 1); the absolute score is their sum.
    """
    coverage = signature_coverage("cibersort", list(signature.index), list(expr.columns), min_coverage)
    whole_median = max(float(np.median(expr.to_numpy(dtype=float))), 1.0)
    genes = [g for g in signature.index if g in expr.columns]
    sig = signature.loc[genes].to_numpy(dtype=float)
    x = (sig - sig.mean()) / sig.reshape(-1).std(ddof=1)
    mixture = expr[genes].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    pool = mixture.reshape(-1)
    null = (
        np.sort(
            [
                cibersort_core(x, _standardise(rng.choice(pool, size=len(genes), replace=False))).correlation
                for _ in range(permutations)
            ]
        )
        if permutations > 0
        else np.array([])
    )
    fractions, stats_rows = [], []
    for row in mixture:
        fit = cibersort_core(x, _standardise(row))
        p_value = 1.0 - (int(np.argmin(np.abs(null - fit.correlation))) + 1) / len(null) if len(null) else np.nan
        fractions.append(fit.weights)
        stats_rows.append(
            {
                "p_value": p_value,
                "correlation": fit.correlation,
                "rmse": fit.rmse,
                "absolute_score": float(np.median(row)) / whole_median,
            }
        )
    cells = list(signature.columns)
    samples = expr.index.rename("sample_id")
    frac = pd.DataFrame(fractions, index=samples, columns=cells)
    statistics = pd.DataFrame(stats_rows, index=samples)
    absolute = frac.mul(statistics["absolute_score"], axis=0)
    return CibersortResult(frac, absolute, statistics, coverage, null)


# ---------------------------------------------------------------------------------------------------
# Immunophenoscore
# ---------------------------------------------------------------------------------------------------

# Charoentong P et al. Cell Rep 2017;18:248-262, the IPS gene table of the Immunophenogram R script
# (icbi-lab, IPS_genes.txt: GENE, NAME, CLASS, WEIGHT); gene sets of the four cell types from Table S6.
IPS_CLASSES = ("MHC", "CP", "EC", "SC")
# (feature, class, weight, genes): MHC = antigen processing, CP = checkpoints / immunomodulators, EC = effector
# cells, SC = suppressor cells; weights +1 / -1 as published.
IPS_FEATURES: tuple[tuple[str, str, int, tuple[str, ...]], ...] = (
    ("B2M", "MHC", 1, ("B2M",)),
    ("TAP1", "MHC", 1, ("TAP1",)),
    ("TAP2", "MHC", 1, ("TAP2",)),
    ("HLA-A", "MHC", 1, ("HLA-A",)),
    ("HLA-B", "MHC", 1, ("HLA-B",)),
    ("HLA-C", "MHC", 1, ("HLA-C",)),
    ("HLA-DPA1", "MHC", 1, ("HLA-DPA1",)),
    ("HLA-DPB1", "MHC", 1, ("HLA-DPB1",)),
    ("HLA-E", "MHC", 1, ("HLA-E",)),
    ("HLA-F", "MHC", 1, ("HLA-F",)),
    ("PD-1", "CP", -1, ("PDCD1",)),
    ("CTLA-4", "CP", -1, ("CTLA4",)),
    ("LAG3", "CP", -1, ("LAG3",)),
    ("TIGIT", "CP", -1, ("TIGIT",)),
    ("TIM3", "CP", -1, ("HAVCR2",)),
    ("PD-L1", "CP", -1, ("CD274",)),
    ("PD-L2", "CP", -1, ("PDCD1LG2",)),
    ("CD27", "CP", 1, ("CD27",)),
    ("ICOS", "CP", 1, ("ICOS",)),
    ("IDO1", "CP", -1, ("IDO1",)),
    (
        "Act CD4",
        "EC",
        1,
        (
            "AIM2",
            "BIRC3",
            "BRIP1",
            "CCL20",
            "CCL4",
            "CCL5",
            "CCNB1",
            "CCR7",
            "DUSP2",
            "ESCO2",
            "ETS1",
            "EXO1",
            "EXOC6",
            "IARS",
            "KIF11",
            "KNTC1",
            "NUF2",
            "PRC1",
            "PSAT1",
            "RGS1",
            "RTKN2",
            "SAMSN1",
            "SELL",
            "TRAT1",
        ),
    ),
    (
        "Act CD8",
        "EC",
        1,
        (
            "ADRM1",
            "AHSA1",
            "C1GALT1C1",
            "CCT6B",
            "CD37",
            "CD3D",
            "CD3E",
            "CD3G",
            "CD69",
            "CD8A",
            "CETN3",
            "CSE1L",
            "GEMIN6",
            "GNLY",
            "GPT2",
            "GZMA",
            "GZMH",
            "GZMK",
            "IL2RB",
            "LCK",
            "MPZL1",
            "NKG7",
            "PIK3IP1",
            "PTRH2",
            "TIMM13",
            "ZAP70",
        ),
    ),
    (
        "Tem CD4",
        "EC",
        1,
        (
            "ATM",
            "CASP3",
            "CASQ1",
            "CD300E",
            "DARS",
            "DOCK9",
            "EXOSC9",
            "EZH2",
            "GDE1",
            "IL34",
            "NCOA4",
            "NEFL",
            "PDGFRL",
            "PTGS1",
            "REPS1",
            "SCG2",
            "SDPR",
            "SIGLEC14",
            "SIGLEC6",
            "TAL1",
            "TFEC",
            "TIPIN",
            "TPK1",
            "UQCRB",
            "USP9Y",
            "WIPF1",
            "ZCRB1",
        ),
    ),
    (
        "Tem CD8",
        "EC",
        1,
        (
            "ACAP1",
            "APOL3",
            "ARHGAP10",
            "ATP10D",
            "C3AR1",
            "CCR5",
            "CD160",
            "CD55",
            "CFLAR",
            "CMKLR1",
            "DAPP1",
            "FCRL6",
            "FLT3LG",
            "GZMM",
            "HAPLN3",
            "HLA-DMB",
            "HLA-DPA1",
            "HLA-DPB1",
            "IFI16",
            "LIME1",
            "LTK",
            "NFKBIA",
            "SETD7",
            "SIK1",
            "TRIB2",
        ),
    ),
    (
        "MDSC",
        "SC",
        -1,
        (
            "CCR2",
            "CD14",
            "CD2",
            "CD86",
            "CXCR4",
            "FCGR2A",
            "FCGR2B",
            "FCGR3A",
            "FERMT3",
            "GPSM3",
            "IL18BP",
            "IL4R",
            "ITGAL",
            "ITGAM",
            "PARVG",
            "PSAP",
            "PTGER2",
            "PTGES2",
            "S100A8",
            "S100A9",
        ),
    ),
    (
        "Treg",
        "SC",
        -1,
        (
            "CCL3L1",
            "CD72",
            "CLEC5A",
            "FOXP3",
            "ITGA4",
            "L1CAM",
            "LIPA",
            "LRP1",
            "LRRC42",
            "MARCO",
            "MMP12",
            "MNDA",
            "MRC1",
            "MS4A6A",
            "PELO",
            "PLEK",
            "PRSS23",
            "PTGIR",
            "ST8SIA4",
            "STAB1",
        ),
    ),
)
IPS_GENES: tuple[tuple[str, str, str, int], ...] = tuple(
    (gene, name, klass, weight) for name, klass, weight, genes in IPS_FEATURES for gene in genes
)


def immunophenoscore(log2: pd.DataFrame, *, min_coverage: float = 0.8) -> tuple[pd.DataFrame, Coverage]:
    """MHC, CP, EC, SC, their sum AZ and the IPS (0-10) per sample, as the Immunophenogram script computes them.

    Each IPS gene's z-score is taken within the sample (mean and sd over all the sample's genes, so the score
    does not depend on the other samples); per feature (a gene, or a cell type's gene set) the mean z times the
    mean weight; each class is the mean of its features; IPS = round(AZ * 10 / 3) clipped to 0..10.
    """
    genes = [g for g, *_ in IPS_GENES]
    coverage = signature_coverage("ips", list(dict.fromkeys(genes)), list(log2.columns), min_coverage)
    values = log2.to_numpy(dtype=float)
    z_all = (values - values.mean(axis=1, keepdims=True)) / values.std(axis=1, ddof=1, keepdims=True)
    z = pd.DataFrame(z_all, index=log2.index, columns=log2.columns)
    table = pd.DataFrame(list(IPS_GENES), columns=["gene", "name", "class", "weight"])
    out = {}
    for klass in IPS_CLASSES:
        features = []
        for _, group in table[table["class"] == klass].groupby("name", sort=False):
            present = [g for g in group["gene"] if g in z.columns]
            mean_z = z[present].mean(axis=1) if present else pd.Series(np.nan, index=log2.index)
            features.append(mean_z * group["weight"].mean())
        out[klass] = pd.concat(features, axis=1).mean(axis=1)
    scores = pd.DataFrame(out)
    scores["AZ"] = scores[list(IPS_CLASSES)].sum(axis=1, skipna=False)
    scores["IPS"] = np.where(scores["AZ"] <= 0, 0, np.where(scores["AZ"] >= 3, 10, np.round(scores["AZ"] * 10 / 3)))
    scores.loc[scores["AZ"].isna(), "IPS"] = np.nan
    scores = scores.rename_axis("sample_id")
    return scores, coverage


# ---------------------------------------------------------------------------------------------------
# Registry and the cohort entry point
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeconvolutionMethod:
    name: str
    input_scale: InputScale
    description: str
    citation: str
    function: Callable[..., Any]


METHODS: dict[str, DeconvolutionMethod] = {}


def register(
    name: str, input_scale: InputScale, description: str, citation: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
        METHODS[name] = DeconvolutionMethod(name, input_scale, description, citation, function)
        return function

    return decorator


register(
    "quantiseq",
    "tpm",
    "quanTIseq: constrained least squares on TIL10, mRNA scaling, Other fraction",
    "Finotello F et al. Genome Med 2019;11:34",
)(quantiseq)
register(
    "cibersort",
    "linear",
    "CIBERSORT-compatible nu-SVR on a user-supplied signature matrix (e.g. LM22)",
    "Newman AM et al. Nat Methods 2015;12:453",
)(cibersort)
register(
    "ips", "log2", "immunophenoscore from its published gene weights", "Charoentong P et al. Cell Rep 2017;18:248"
)(immunophenoscore)


def deconvolve(method: str, expr: pd.DataFrame, layer_scale: str, **options: Any) -> Any:
    """Run a registered method after checking the matrix against the scale the method declares."""
    if method not in METHODS:
        raise KeyError(f"unknown deconvolution method {method!r}; known: {sorted(METHODS)}")
    spec = METHODS[method]
    check_input_scale(expr, layer_scale, spec.input_scale, method)
    return spec.function(expr, **options)
