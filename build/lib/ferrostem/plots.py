"""Figures as self-contained data URIs, so a report is one HTML file."""

from __future__ import annotations

import base64
import gzip
import io
import struct
import zlib

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.collections
import matplotlib.lines
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

TISSUE_COLOURS = {"tumor": "#c0392b", "normal": "#2471a3", "other": "#7f8c8d"}


# Figures are rendered at twice the resolution they are shown at, for sharp high-density screens; the report
# shows every PNG at half its pixel width (report.embed_figures).
PIXEL_DENSITY = 2


# Every figure also travels as SVG, for journals and editing: gzipped inside its PNG in a private ancillary chunk
# (browsers and image tools skip such chunks), so that a figure stays one data URI in every section's JSON. The
# report moves it out into a download link beside the PNG (report.embed_figures).
SVG_CHUNK = b"svGz"
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


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG file, in order."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    chunks, position = [], 8
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position : position + 8])
        chunks.append((kind, png[position + 8 : position + 8 + length]))
        position += 12 + length
    return chunks


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)) for kind, data in chunks
    )


def with_png_chunk(png: bytes, kind: bytes, data: bytes) -> bytes:
    """`png` with one more chunk, just before its IEND."""
    chunks = png_chunks(png)
    return png_from_chunks([*chunks[:-1], (kind, data), chunks[-1]])


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
