"""The report's page assembly: figures at twice the pixel density they are shown at with their SVG, the inlined
script, tables formatted per column."""

from __future__ import annotations

import base64
import gzip
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ferrostem.plots import PIXEL_DENSITY, SVG_CHUNK, figure_uri, png_chunks
from ferrostem.report import Section, embed_figures, render_report, table_html


def png_width(uri: str) -> int:
    return int.from_bytes(base64.b64decode(uri.split(",", 1)[1][:32])[16:20], "big")


def test_figures_are_rendered_at_twice_their_display_width() -> None:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    uri = figure_uri(fig, dpi=100)
    assert PIXEL_DENSITY == 2
    assert 700 <= png_width(uri) <= 820  # 4 in x 200 px/in, give or take the tight bounding box
    page = embed_figures(f'<figure><img src="{uri}" alt="x"></figure>')
    assert f'width="{png_width(uri) // 2}"' in page


def test_report_inlines_its_script_and_sizes_every_image() -> None:
    fig, ax = plt.subplots(figsize=(3, 2))
    uri = figure_uri(fig)
    page = render_report([], cohort="c", title="t", simulated=False)
    assert "function enhance(table" in page and "<script src" not in page
    sized = embed_figures(f'<img src="{uri}"><img src="{uri}">')
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
    context = dict.fromkeys(("record", "checksums", "harmonisation", "software", "cohort_config", "config"), "")
    sections = [
        Section(
            id="provenance",
            title="Provenance",
            template="provenance.html.j2",
            order=90,
            summary=["GPX4 higher in tumours"],
            context=context,
        )
    ]
    page = render_report(sections, cohort="c", title="t", simulated=True)
    assert '<a class="finding" href="#provenance">GPX4 higher in tumours</a>' in page
    assert 'class="simulated-data"' in page and 'content: "SIMULATED"' in page
    assert 'class="simulated-data"' not in render_report(sections, cohort="c", title="t", simulated=False)


def svg_of(uri: str) -> bytes:
    chunks = png_chunks(base64.b64decode(uri.split(",", 1)[1]))
    return gzip.decompress(next(data for kind, data in chunks if kind == SVG_CHUNK))


def test_every_figure_carries_its_svg_and_the_page_moves_it_beside_the_png() -> None:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("months since diagnosis")
    uri = figure_uri(fig)
    svg = svg_of(uri)
    assert svg.startswith(b"<?xml") and b"<svg" in svg
    assert b"months since diagnosis" in svg, "text stays text (editable), not glyph outlines"
    page = embed_figures(f'<img src="{uri}" alt="x">')
    png, packed = re.search(r'src="data:image/png;base64,([^"]+)" width="\d+" data-svg-gzip="([^"]+)"', page).groups()
    assert gzip.decompress(base64.b64decode(packed)) == svg
    kinds = [kind for kind, _ in png_chunks(base64.b64decode(png))]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and SVG_CHUNK not in kinds, "the PNG download is a plain PNG"


def test_dense_layers_are_rasterized_in_the_svg_and_sparse_ones_stay_vectors() -> None:
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots()
    ax.scatter(rng.normal(size=20000), rng.normal(size=20000), s=3)
    dense = svg_of(figure_uri(fig))
    assert b"<image" in dense and len(dense) < 400_000
    fig, ax = plt.subplots()
    ax.scatter(rng.normal(size=20), rng.normal(size=20), s=3)
    sparse = svg_of(figure_uri(fig))
    assert b"<image" not in sparse


def cells(page: str, column: int) -> list[tuple[str, str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", page.split("<tbody>")[1])
    return [re.findall(r'<td(?: data-value="([^"]*)")?[^>]*>([^<]*)</td>', row)[column] for row in rows]


def test_table_numbers_are_formatted_per_column_and_keep_their_full_value() -> None:
    frame = pd.DataFrame(
        {
            "score": ["a", "b"],
            "events": [64.0, np.nan],
            "n": [100, 20],
            "log2FC": [1.23456, -0.5],
            "hr_lower": [0.9981, 1.5],
            "p_wald": [1.7123e-8, 0.043],
            "baseMean": [7930.2, 12.345],
        }
    )
    page = table_html(frame)
    assert cells(page, 1) == [("64.0", "64"), ("", "")]
    assert cells(page, 2) == [("100", "100"), ("20", "20")]
    assert cells(page, 3) == [("1.23456", "1.235"), ("-0.5", "-0.500")]
    assert cells(page, 4) == [("0.9981", "1.00"), ("1.5", "1.50")]
    assert cells(page, 5) == [("1.7123e-08", "1.71e-08"), ("0.043", "4.30e-02")]
    assert cells(page, 6) == [("7930.2", "7930"), ("12.345", "12.3")]
    assert [float(v) for v, _ in cells(page, 5)] == [1.7123e-8, 0.043]


def test_a_gene_symbol_shows_its_ensembl_id_on_hover() -> None:
    frame = pd.DataFrame({"gene": ["GPX4", "X"], "gene_id": ["ENSG00000167468.19", ""], "padj": [0.01, 0.2]})
    page = table_html(frame)
    assert '<td title="ENSG00000167468.19">GPX4</td>' in page and "<td>X</td>" in page


def test_volcano_label_placement_does_not_depend_on_the_machines_speed(monkeypatch) -> None:
    """adjustText stopped after a wall-clock limit: on a loaded machine the labels (and so the report) differed."""
    import itertools

    import adjustText

    from ferrostem.de_report import volcano_figure

    rng = np.random.default_rng(3)
    genes = ["GPX4", "AIFM2", "SLC3A2", "ACSL4", "SLC7A11", "TFRC", "NCOA4", "FTH1", "NFE2L2"]
    table = pd.DataFrame(
        {
            "symbol": genes + [f"G{i}" for i in range(300)],
            "log2FC": np.r_[np.full(len(genes), 1.5) + rng.normal(0, 0.05, len(genes)), rng.normal(0, 1, 300)],
            "pvalue": np.r_[np.full(len(genes), 1e-8), rng.uniform(size=300)],
        }
    )
    table["padj"] = np.minimum(table["pvalue"] * 10, 1.0)
    table = table.set_index("symbol")  # as volcano_figure gets it: symbols as the index
    quick = figure_uri(volcano_figure(table, 0.05, "volcano"))
    ticks = itertools.count(step=10.0)  # every call of the clock is 10 s later: a very slow machine
    monkeypatch.setattr(adjustText, "timer", lambda: next(ticks))
    slow = figure_uri(volcano_figure(table, 0.05, "volcano"))
    assert quick == slow
