"""The report's page assembly: figures at twice the pixel density they are shown at, the inlined script."""

from __future__ import annotations

import base64

import matplotlib.pyplot as plt

from ferrostem.plots import PIXEL_DENSITY, figure_uri
from ferrostem.report import Section, render_report, show_at_half_size


def png_width(uri: str) -> int:
    return int.from_bytes(base64.b64decode(uri.split(",", 1)[1][:32])[16:20], "big")


def test_figures_are_rendered_at_twice_their_display_width() -> None:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    uri = figure_uri(fig, dpi=100)
    assert PIXEL_DENSITY == 2
    assert 700 <= png_width(uri) <= 820  # 4 in x 200 px/in, give or take the tight bounding box
    page = show_at_half_size(f'<figure><img src="{uri}" alt="x"></figure>')
    assert f'width="{png_width(uri) // 2}"' in page and uri in page


def test_report_inlines_its_script_and_sizes_every_image() -> None:
    fig, ax = plt.subplots(figsize=(3, 2))
    uri = figure_uri(fig)
    page = render_report([], cohort="c", title="t", simulated=False)
    assert "function enhance(table" in page and "<script src" not in page
    sized = show_at_half_size(f'<img src="{uri}"><img src="{uri}">')
    assert sized.count('width="') == 2


def test_group_difference_names_its_test_and_p() -> None:
    import numpy as np

    from ferrostem.signature_report import group_difference, significance_marks

    rng = np.random.default_rng(1)
    two = [("tumor", rng.normal(1, 1, 40)), ("normal", rng.normal(0, 1, 40))]
    assert group_difference(two).startswith("Mann-Whitney p = ")
    three = [*two, ("other", rng.normal(0, 1, 10))]
    assert group_difference(three).startswith("Kruskal-Wallis p = ")
    assert group_difference([("tumor", np.array([1.0]))]) == "too few samples to compare"
    assert list(significance_marks(np.array([0.0005, 0.005, 0.04, 0.2]))) == ["***", "**", "*", ""]


def test_main_findings_link_to_their_sections_and_simulated_figures_are_marked() -> None:
    context = {k: "" for k in ("record", "checksums", "harmonisation", "software", "cohort_config", "config")}
    sections = [Section(id="provenance", title="Provenance", template="provenance.html.j2", order=90,
                        summary=["GPX4 higher in tumours"], context=context)]
    page = render_report(sections, cohort="c", title="t", simulated=True)
    assert '<a class="finding" href="#provenance">GPX4 higher in tumours</a>' in page
    assert 'class="simulated-data"' in page and 'content: "SIMULATED"' in page
    assert 'class="simulated-data"' not in render_report(sections, cohort="c", title="t", simulated=False)
