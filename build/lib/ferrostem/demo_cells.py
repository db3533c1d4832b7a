"""Planted immune-cell fractions for the simulated demo: TIL10 profiles mixed into each sample's TPM.

SIMULATED data. Per sample, immune cells make up a share X of the mRNA (0.10 to 0.40, higher with the
`immune` latent factor); the share of each TIL10 cell type follows the latent factors (CD8 T and NK cells the
`cytotoxic` factor, the others the `immune` factor) plus noise. The non-immune part expresses the TIL10 genes at
about 1 TPM (log-normal); each immune cell type contributes its TIL10 profile at those genes and the sample's own
profile elsewhere, so that every other gene keeps its planted fold changes and programmes. The mixture is made in
TPM and turned back into expected counts with the sample's library size.

The truth is written as quanTIseq reports fractions (Finotello et al. 2019): the mRNA proportions divided by
each cell type's mRNA content, rescaled to the immune share X, and Other = 1 - X.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .deconvolution import Til10, load_til10

CELL_FRACTION_STREAM = 16  # the planted fractions draw from their own stream: the rest of the demo is unchanged
COUNTS_STREAM = 17  # the RNA-seq counts of the mixed means (demo.simulate_rnaseq)
CYTOTOXIC_CELLS = ("T.cells.CD8", "NK.cells")
NON_IMMUNE_TIL10_TPM = (0.0, 0.4)  # log10 mean and sd of the non-immune cells' TPM at the TIL10 genes


def planted_fractions_as_quantiseq(proportions: pd.DataFrame, mrna_scaling: pd.Series) -> pd.DataFrame:
    """mRNA proportions (samples x cell types) -> the cell fractions quanTIseq estimates, with Other."""
    scaled = proportions.div(mrna_scaling.reindex(proportions.columns), axis=1)
    immune = proportions.sum(axis=1)
    cells = scaled.div(scaled.sum(axis=1), axis=0).mul(immune, axis=0)
    return cells.assign(Other=1.0 - immune)


def plant_cell_fractions(
    mu: np.ndarray, genes: pd.DataFrame, latent: pd.DataFrame, seed: int, til10: Til10 | None = None
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Mix TIL10 profiles into `mu` (genes x samples expected counts). Returns the new expected counts (same
    library sizes), the mRNA proportions and the cell fractions as quanTIseq reports them (samples x cells)."""
    til10 = til10 or load_til10()
    rng = np.random.default_rng([seed, CELL_FRACTION_STREAM])
    n_samples = mu.shape[1]
    symbols = pd.Index(genes["symbol"])
    signature = til10.signature.loc[til10.signature.index.isin(symbols)]
    rows = symbols.get_indexer(signature.index)
    on_signature = np.zeros(len(symbols), dtype=bool)
    on_signature[rows] = True

    length_kb = genes["eff_length"].to_numpy(dtype=float)[:, None] / 1e3
    own = mu / length_kb
    own = own / own.sum(axis=0) * 1e6
    own[rows] = 10 ** rng.normal(*NON_IMMUNE_TIL10_TPM, size=(len(rows), n_samples))
    own = own / own.sum(axis=0) * 1e6

    immune_share = 0.10 + 0.30 / (1.0 + np.exp(-latent["immune"].to_numpy(dtype=float)))
    cells = list(signature.columns)
    factor = np.column_stack(
        [latent["cytotoxic" if c in CYTOTOXIC_CELLS else "immune"].to_numpy(dtype=float) for c in cells]
    )
    log_weight = 0.6 * factor + rng.normal(0.0, 0.5, size=(n_samples, len(cells)))
    shares = np.exp(log_weight) / np.exp(log_weight).sum(axis=1, keepdims=True)
    proportions = pd.DataFrame(shares * immune_share[:, None], columns=cells)

    mixed = own * (1.0 - immune_share)
    own_rest = own[~on_signature].sum(axis=0)
    for cell in cells:
        profile = np.empty_like(own)
        profile[rows] = signature[cell].to_numpy()[:, None]
        # the rest of the cell's mRNA follows the sample's own profile: planted fold changes stay as they are
        profile[~on_signature] = own[~on_signature] / own_rest * (1e6 - signature[cell].sum())
        mixed += profile * proportions[cell].to_numpy()
    counts_scale = mixed * length_kb
    new_mu = counts_scale / counts_scale.sum(axis=0) * mu.sum(axis=0)
    return new_mu, proportions, planted_fractions_as_quantiseq(proportions, til10.mrna_scaling)
