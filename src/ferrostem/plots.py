"""Figures as self-contained data URIs, so a report is one HTML file."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

TISSUE_COLOURS = {"tumor": "#c0392b", "normal": "#2471a3", "other": "#7f8c8d"}


# Figures are rendered at twice the resolution they are shown at, for sharp high-density screens; the report
# shows every PNG at half its pixel width (report.show_at_half_size).
PIXEL_DENSITY = 2


def figure_uri(fig: Figure, dpi: int = 110) -> str:
    """Render `fig` as PNG at PIXEL_DENSITY x `dpi` and return a data URI; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi * PIXEL_DENSITY, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def new_figure(width: float = 6.0, height: float = 4.0) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def pca_coordinates(values: pd.DataFrame, n_top_genes: int = 2000) -> tuple[pd.DataFrame, np.ndarray]:
    """PCA (scikit-learn) of samples x genes values on the most variable genes: PC1/PC2 and variance ratios."""
    from sklearn.decomposition import PCA

    matrix = values.to_numpy(dtype=np.float64)
    top = np.argsort(matrix.var(axis=0))[::-1][: min(n_top_genes, matrix.shape[1])]
    pca = PCA(n_components=min(10, matrix.shape[0] - 1, len(top)), svd_solver="full").fit(matrix[:, top])
    coordinates = pd.DataFrame(pca.transform(matrix[:, top])[:, :2], index=values.index, columns=["PC1", "PC2"])
    return coordinates, pca.explained_variance_ratio_
