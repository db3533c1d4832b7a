"""Figures as self-contained data URIs, so a report is one HTML file."""

from __future__ import annotations

import base64
import gzip
import io

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.collections
import matplotlib.lines
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from .png import PIXEL_DENSITY, SVG_CHUNK, png_chunks, png_from_chunks, with_png_chunk  # noqa: F401 (re-exported)

TISSUE_COLOURS = {"tumor": "#c0392b", "normal": "#2471a3", "other": "#7f8c8d"}


# Layers with more marks than this are embedded in the SVG as images (at the PNG's resolution): a volcano's
# 20,000 points as vectors would make a file of megabytes that editors crawl through.
RASTERIZE_ABOVE = 500


def figure_uri(fig: Figure, dpi: int = 110) -> str:
    """Render `fig` as PNG at PIXEL_DENSITY x `dpi`, with its SVG in an SVG_CHUNK; return a data URI and close it."""
    dpi = dpi * PIXEL_DENSITY
    bbox = tight_bbox(fig, dpi)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches=bbox)
    svg = figure_svg(fig, dpi, bbox)
    plt.close(fig)
    png = with_png_chunk(buffer.getvalue(), SVG_CHUNK, gzip.compress(svg, mtime=0))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def tight_bbox(fig: Figure, dpi: int) -> Bbox:
    """The area `savefig(bbox_inches="tight")` crops to at `dpi`, laid out once for both the PNG and the SVG
    ("tight" lays the whole figure out again in every savefig; text layout is most of a figure's cost)."""
    fig.set_dpi(dpi)
    fig.draw_without_rendering()
    fig.set_layout_engine("none")  # laid out above, as savefig does before it prints
    bbox = fig.get_tightbbox(fig.canvas.get_renderer())
    return bbox.padded(matplotlib.rcParams["savefig.pad_inches"])


def figure_svg(fig: Figure, dpi: int, bbox: Bbox | str = "tight") -> bytes:
    """`fig` as SVG with editable text; layers of more than RASTERIZE_ABOVE marks are rasterized at `dpi`."""
    for ax in fig.axes:
        for artist in [*ax.collections, *ax.lines]:
            if _mark_count(artist) > RASTERIZE_ABOVE:
                artist.set_rasterized(True)
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "ferrostem"}):
        fig.savefig(buffer, format="svg", dpi=dpi, bbox_inches=bbox, metadata={"Date": None})
    return buffer.getvalue()


def _mark_count(artist: object) -> int:
    if isinstance(artist, matplotlib.lines.Line2D):
        return len(artist.get_xdata())
    if isinstance(artist, matplotlib.collections.QuadMesh):
        return int(np.prod(artist.get_coordinates().shape[:2]))
    if isinstance(artist, matplotlib.collections.Collection):
        return max(len(artist.get_offsets()), len(artist.get_paths()))
    return 0


def new_figure(width: float = 6.0, height: float = 4.0) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def pca_coordinates(values: pd.DataFrame, n_top_genes: int = 2000) -> tuple[pd.DataFrame, np.ndarray]:
    """PCA of samples x genes values on the most variable genes: PC1/PC2 and the variance ratios of the first ten.

    The full SVD of the centred matrix (numpy's LAPACK gesdd), with scikit-learn's `PCA(svd_solver="full")`
    conventions: each component's largest loading is positive, ratios are of the total variance. Not scikit-learn
    itself: importing it costs 2.5 s of CPU in each job that draws a PCA (docs/performance.md).
    """
    matrix = values.to_numpy(dtype=np.float64)
    top = np.argsort(matrix.var(axis=0))[::-1][: min(n_top_genes, matrix.shape[1])]
    centred = matrix[:, top] - matrix[:, top].mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    vt *= signs[:, np.newaxis]
    variance = singular**2
    n_components = min(10, matrix.shape[0] - 1, len(top))
    coordinates = pd.DataFrame(centred @ vt[:2].T, index=values.index, columns=["PC1", "PC2"])
    return coordinates, (variance / variance.sum())[:n_components]
