"""A figure is drawn once for its PNG and its tight box (plots.figure_rgba_tight): the PNG is the draw cropped to
savefig(bbox_inches="tight")'s box with its corner snapped to a whole pixel, and the SVG is cropped to that box."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from matplotlib.transforms import Bbox

from ferrostem.plots import PIXEL_DENSITY, figure_rgba_tight, figure_svg, figure_uri
from ferrostem.png import encode_png


def busy_figure():
    fig, axes = plt.subplots(1, 2, figsize=(7, 3))
    rng = np.random.default_rng(0)
    mesh = axes[0].pcolormesh(rng.random((12, 8)))
    fig.colorbar(mesh, ax=axes[0], label="scaled expression")
    axes[1].plot(np.arange(10), rng.random(10), label="model")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1))  # outside the axes: "tight" must widen the crop
    axes[1].set_xlabel("months since diagnosis")
    axes[1].set_title("an axes title (its position is frozen after the layout pass)")
    fig.suptitle("a title above everything")
    fig.tight_layout()
    return fig


def pixels(png: bytes) -> np.ndarray:
    """RGBA pixels (figure_uri writes RGB when every pixel is opaque, matplotlib always RGBA)."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def snapped_savefig(figure, dpi=110 * PIXEL_DENSITY):
    """savefig's tight PNG with the box's lower left corner moved to the nearest whole pixel (same size)."""
    tight = io.BytesIO()
    figure().savefig(tight, format="png", dpi=dpi, bbox_inches="tight")
    fig = figure()
    fig.set_dpi(dpi)
    box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(plt.rcParams["savefig.pad_inches"])
    x0, y0 = round(box.x0 * dpi) / dpi, round(box.y0 * dpi) / dpi
    snapped = io.BytesIO()
    fig.savefig(snapped, format="png", dpi=dpi, bbox_inches=Bbox.from_bounds(x0, y0, box.width, box.height))
    return pixels(tight.getvalue()), pixels(snapped.getvalue())


def test_one_draw_gives_the_pixels_of_a_tight_savefig_snapped_to_whole_pixels():
    tight, snapped = snapped_savefig(busy_figure)
    ours = pixels(base64.b64decode(figure_uri(busy_figure()).split(",", 1)[1]))
    np.testing.assert_array_equal(ours, snapped)
    # against the unsnapped savefig: the same size, the picture moved by under half a pixel (only anti-aliased
    # edges differ, by a shade on average)
    assert ours.shape == tight.shape
    assert np.abs(ours.astype(int) - tight.astype(int)).mean() < 3


def test_a_box_beyond_the_render_margin_is_drawn_again_cropped_to_it():
    def figure():
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [0, 1])
        ax.annotate("far to the left of the figure", (-4.0, 0.5), xycoords="axes fraction")
        return fig

    tight = io.BytesIO()
    figure().savefig(tight, format="png", dpi=110 * PIXEL_DENSITY, bbox_inches="tight")
    ours = pixels(base64.b64decode(figure_uri(figure()).split(",", 1)[1]))
    np.testing.assert_array_equal(ours, pixels(tight.getvalue()))  # savefig's own draw, not a crop


def test_the_svg_is_cropped_to_the_same_area_as_the_png():
    fig = busy_figure()
    _, bbox = figure_rgba_tight(fig, 220)
    uri = figure_uri(busy_figure())
    png = pixels(base64.b64decode(uri.split(",", 1)[1]))
    assert abs(png.shape[1] - bbox.width * 220) <= 1 and abs(png.shape[0] - bbox.height * 220) <= 1
    svg_fig = busy_figure()

    svg = figure_svg(svg_fig, 220, figure_rgba_tight(svg_fig, 220)[1]).decode()
    width_pt = float(re.search(r'width="([\d.]+)pt"', svg).group(1))
    assert abs(width_pt - bbox.width * 72) < 0.5


def test_a_title_moved_above_top_tick_labels_is_where_savefig_puts_it():
    def figure():
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot([0, 1e6], [0, 2e7])
        ax.xaxis.tick_top()  # the title must clear these labels: matplotlib moves it, and keeps doing so
        ax.set_title("above the top ticks")
        return fig

    _, snapped = snapped_savefig(figure)
    ours = base64.b64decode(figure_uri(figure()).split(",", 1)[1])
    np.testing.assert_array_equal(pixels(ours), snapped)


def test_encode_png_gives_back_the_pixels_opaque_as_rgb_and_transparent_as_rgba():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(37, 53, 4), dtype=np.uint8)
    opaque = rgba.copy()
    opaque[..., 3] = 255
    for array, mode in ((rgba, "RGBA"), (opaque, "RGB")):
        image = Image.open(io.BytesIO(encode_png(array, dpi=220, text={"Software": "test"})))
        assert image.mode == mode and round(image.info["dpi"][0]) == 220 and image.info["Software"] == "test"
        np.testing.assert_array_equal(np.asarray(image.convert("RGBA")), array)


def test_box_lines_as_collections_give_boxplots_pixels():
    from ferrostem.plots import collect_box_lines

    def figure(collect):
        fig, ax = plt.subplots(figsize=(4, 3))
        data = [np.random.default_rng(i).normal(i, 1, 40) for i in range(5)]
        ax.scatter(np.repeat(np.arange(1, 6), 40), np.concatenate(data), s=4, alpha=0.5)
        parts = ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=False, whiskerprops={"linewidth": 0.4})
        for patch in parts["boxes"]:
            patch.set_alpha(0.6)
        if collect:
            collect_box_lines(ax, parts)
            assert not ax.lines  # 25 Line2D artists became two collections
        return fig

    assert (
        pixels(base64.b64decode(figure_uri(figure(True)).split(",", 1)[1])).tobytes()
        == pixels(base64.b64decode(figure_uri(figure(False)).split(",", 1)[1])).tobytes()
    )
