"""Figures as self-contained data URIs, so a report is one HTML file."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

TISSUE_COLOURS = {"tumor": "#c0392b", "normal": "#2471a3", "other": "#7f8c8d"}


def figure_uri(fig: Figure, dpi: int = 110) -> str:
    """Render `fig` as PNG and return a data URI; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def new_figure(width: float = 6.0, height: float = 4.0) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax
