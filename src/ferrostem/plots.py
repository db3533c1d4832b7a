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
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from matplotlib.transforms import Bbox

from .png import (  # noqa: F401 (re-exported)
    PIXEL_DENSITY,
    SVG_CHUNK,
    encode_png,
    png_chunks,
    png_from_chunks,
    with_png_chunk,
)

TISSUE_COLOURS = {"tumor": "#c0392b", "normal": "#2471a3", "other": "#7f8c8d"}


# Layers with more marks than this are embedded in the SVG as images (at the PNG's resolution): a volcano's
# 20,000 points as vectors would make a file of megabytes that editors crawl through.
RASTERIZE_ABOVE = 500


def figure_uri(fig: Figure, dpi: int = 110) -> str:
    """Render `fig` as PNG at PIXEL_DENSITY x `dpi`, with its SVG in an SVG_CHUNK; return a data URI and close it."""
    dpi = dpi * PIXEL_DENSITY
    rgba, bbox = figure_rgba_tight(fig, dpi)
    svg = figure_svg(fig, dpi, bbox)
    plt.close(fig)
    png = encode_png(rgba, dpi, {"Software": f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/"})
    png = with_png_chunk(png, SVG_CHUNK, gzip.compress(svg, mtime=0))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# The PNG's single draw renders this much (inches; left, bottom, right, top) beyond the figure's edges, where its
# tight box may reach: tick labels and axis labels of a figure that never called tight_layout (long gene or set
# names on the left, rotated names below), legends and annotations on the right. The demo's 139 section figures
# reach at most 2.23, 1.65, 0.77 and 0.03 in beyond the four edges. Binary fractions, so that each margin is a
# whole number of pixels at any integer dpi: the figure is drawn on the same pixel grid as without it.
RENDER_MARGIN = (2.5, 2.0, 1.0, 0.5)


def figure_rgba_tight(fig: Figure, dpi: int) -> tuple[np.ndarray, Bbox]:
    """`fig` rendered once by Agg at `dpi` and cropped to its tight box, with that box (inches, padded as
    `savefig(bbox_inches="tight")` pads it) for the SVG.

    One draw does both: the figure and RENDER_MARGIN around it are rendered, the tight box is measured on that
    draw's renderer (its text extents are cached from the draw) and the pixels are cropped to it, the box's
    corner snapped to the nearest whole pixel. A tight savefig instead measures the box in a pass of its own and
    then draws the figure shifted by the box's corner, a fraction of a pixel: here the picture sits up to half
    a pixel from where that savefig puts it (anti-aliased edges differ by a shade; the crop's size in pixels
    and the SVG's box are savefig's). A box reaching beyond the margin is drawn again cropped to it, as savefig
    draws it (`figure_rgba`).
    """
    fig.set_dpi(dpi)
    engine = fig.get_layout_engine()
    if engine is not None and not isinstance(engine, PlaceHolderLayoutEngine):
        fig.draw_without_rendering()  # the layout engine runs in draw; savefig would run it in a draw of its own
    # No engine from here on: laid out now, as savefig does before it prints. Not even the placeholder that
    # `set_layout_engine("none")` and `fig.tight_layout()` leave behind, for which every savefig draws the whole
    # figure once more (without rendering) before it prints.
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)
    width_in, height_in = fig.get_size_inches()
    left_in, bottom_in, right_in, top_in = RENDER_MARGIN
    canvas = Bbox.from_extents(-left_in, -bottom_in, width_in + right_in, height_in + top_in)
    buffer = _RendererBuffer()
    fig.savefig(buffer, format="rgba", dpi=dpi, bbox_inches=canvas)
    pixels, renderer = buffer.pixels, getattr(fig.canvas, "renderer", None)
    _freeze_title_positions(fig)  # placed by this draw; the SVG's draw leaves them there
    bbox = fig.get_tightbbox(renderer if renderer is not None else fig._get_renderer())
    bbox = bbox.padded(matplotlib.rcParams["savefig.pad_inches"])
    # savefig's crop: int(width) x int(height) pixels up and right of the box's lower left corner; the figure's
    # origin is the margins' whole numbers of pixels in from the rendered area's lower left, and rows run down.
    width, height = int(bbox.width * dpi), int(bbox.height * dpi)
    left = round(bbox.x0 * dpi) + round(left_in * dpi)
    bottom = pixels.shape[0] - round(bbox.y0 * dpi) - round(bottom_in * dpi)
    if left < 0 or bottom - height < 0 or left + width > pixels.shape[1] or bottom > pixels.shape[0]:
        return figure_rgba(fig, dpi, bbox), bbox
    return pixels[bottom - height : bottom, left : left + width], bbox


def _freeze_title_positions(fig: Figure) -> None:
    """Keep each Axes title where the PNG's draw put it, for the tight box and the SVG's draw that follow.

    Matplotlib re-places a title in every draw (`Axes._update_title_position`: above top tick labels and the y
    axis' offset text), and to do it measures all tick labels of the y axis again: a fifth of a figure's drawing
    time. Only titles the layout left at their default height (y = 1 in axes coordinates, the usual case: nothing
    above the axes) are frozen there, which is where the draw would put them again; a title the layout moved keeps
    being placed by matplotlib, as does an Axes with inset (child) axes.
    """
    for ax in fig.axes:
        # matplotlib's private title attributes (3.1 to 3.11 at least); without them, matplotlib places the titles
        titles = (ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None))
        if getattr(ax, "_autotitlepos", False) is False or None in titles or ax.child_axes:
            continue
        if any(t.get_position()[1] != 1.0 for t in titles):
            continue
        ax._autotitlepos = False


def figure_rgba(fig: Figure, dpi: int, bbox: Bbox) -> np.ndarray:
    """`fig` rendered by Agg at `dpi`, cropped to `bbox` (inches): the h x w x 4 pixels `savefig(format="png")`
    encodes."""
    buffer = _RendererBuffer()
    fig.savefig(buffer, format="rgba", dpi=dpi, bbox_inches=bbox)
    return buffer.pixels


class _RendererBuffer(io.BytesIO):
    """A file for savefig(format="rgba"), which writes the renderer's h x w x 4 buffer in one call: kept as an
    array (the raw bytes alone do not say the width)."""

    pixels: np.ndarray

    def write(self, data: memoryview) -> int:
        self.pixels = np.asarray(data, dtype=np.uint8)  # the renderer's buffer, not a copy (it stays alive)
        if self.pixels.ndim != 3:
            raise RuntimeError(f"expected the renderer's h x w x 4 buffer, got shape {self.pixels.shape}")
        return self.pixels.nbytes


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


def collect_box_lines(ax: plt.Axes, parts: dict) -> None:
    """Replace `ax.boxplot`'s whiskers, caps and medians (five Line2D artists a box, each drawn on its own) by two
    LineCollections with the same segments, colours, widths, styles, caps, zorders and sticky edges. Drawn after
    all boxes (boxplot draws each box's lines after that box; a box's lines touch no other box): the same pixels.
    Lines with markers, or whose caps, joins, alpha or zorder differ within a group, are left as they are."""
    for names in (("whiskers", "caps"), ("medians",)):
        lines = [line for name in names for line in parts.get(name, [])]
        shared = {(ln.get_solid_capstyle(), ln.get_solid_joinstyle(), ln.get_alpha(), ln.get_zorder()) for ln in lines}
        if not lines or len(shared) > 1 or any(line.get_marker() not in ("", "None", None) for line in lines):
            continue
        collection = matplotlib.collections.LineCollection(
            [np.column_stack(line.get_data()) for line in lines],
            colors=[line.get_color() for line in lines],
            linewidths=[line.get_linewidth() for line in lines],
            linestyles=[line.get_linestyle() for line in lines],
            capstyle=lines[0].get_solid_capstyle(),
            joinstyle=lines[0].get_solid_joinstyle(),
            alpha=lines[0].get_alpha(),
            zorder=lines[0].get_zorder(),
        )
        for line in lines:
            collection.sticky_edges.x.extend(line.sticky_edges.x)  # boxplot's medians keep the margins off
            collection.sticky_edges.y.extend(line.sticky_edges.y)
            line.remove()
        ax.add_collection(collection, autolim=False)


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
