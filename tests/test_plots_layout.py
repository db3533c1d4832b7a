"""A figure is laid out once for its PNG and SVG (plots.tight_bbox): the PNG is what savefig(bbox_inches="tight")
gives, pixel for pixel, and the SVG is cropped to the same area."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from ferrostem.plots import PIXEL_DENSITY, figure_svg, figure_uri, tight_bbox
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


def test_one_layout_pass_gives_the_pixels_of_a_tight_savefig():
    reference = io.BytesIO()
    busy_figure().savefig(reference, format="png", dpi=110 * PIXEL_DENSITY, bbox_inches="tight")
    uri = figure_uri(busy_figure())
    ours = base64.b64decode(uri.split(",", 1)[1])
    np.testing.assert_array_equal(pixels(ours), pixels(reference.getvalue()))


def test_the_svg_is_cropped_to_the_same_area_as_the_png():
    fig = busy_figure()
    bbox = tight_bbox(fig, 220)
    uri = figure_uri(fig)
    png = pixels(base64.b64decode(uri.split(",", 1)[1]))
    assert abs(png.shape[1] - bbox.width * 220) <= 1 and abs(png.shape[0] - bbox.height * 220) <= 1
    svg_fig = busy_figure()

    svg = figure_svg(svg_fig, 220, tight_bbox(svg_fig, 220)).decode()
    width_pt = float(re.search(r'width="([\d.]+)pt"', svg).group(1))
    assert abs(width_pt - bbox.width * 72) < 0.5


def test_a_title_moved_above_top_tick_labels_is_where_savefig_puts_it():
    def figure():
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot([0, 1e6], [0, 2e7])
        ax.xaxis.tick_top()  # the title must clear these labels: matplotlib moves it, and keeps doing so
        ax.set_title("above the top ticks")
        return fig

    reference = io.BytesIO()
    figure().savefig(reference, format="png", dpi=110 * PIXEL_DENSITY, bbox_inches="tight")
    ours = base64.b64decode(figure_uri(figure()).split(",", 1)[1])
    np.testing.assert_array_equal(pixels(ours), pixels(reference.getvalue()))


def test_encode_png_gives_back_the_pixels_opaque_as_rgb_and_transparent_as_rgba():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(37, 53, 4), dtype=np.uint8)
    opaque = rgba.copy()
    opaque[..., 3] = 255
    for array, mode in ((rgba, "RGBA"), (opaque, "RGB")):
        image = Image.open(io.BytesIO(encode_png(array, dpi=220, text={"Software": "test"})))
        assert image.mode == mode and round(image.info["dpi"][0]) == 220 and image.info["Software"] == "test"
        np.testing.assert_array_equal(np.asarray(image.convert("RGBA")), array)
