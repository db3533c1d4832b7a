"""The per-cohort HTML report: a list of sections, each a template plus the data it shows.

A stage adds its section by writing a `Section` (JSON) with `write_section`; the report rule renders
every section it is given, in `order`, into one self-contained HTML file. Adding a section never means
editing another: write a template in templates/sections/ and a rule that produces the JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from ..files import write_json
from ..png import PIXEL_DENSITY, SVG_CHUNK, png_chunks, png_from_chunks

if TYPE_CHECKING:
    import pandas as pd

# numpy and pandas are imported in the table helpers that need them, not here: the report rule only reads
# section JSONs and renders templates, and would otherwise pay a second of imports (docs/performance.md)

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Section:
    id: str
    title: str
    template: str
    order: int
    context: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)  # one-line findings for the report's top summary


def write_section(section: Section, path: str | os.PathLike[str]) -> None:
    write_json(asdict(section), path, indent=None, default=_json_default)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def read_section(path: str | os.PathLike[str]) -> Section:
    with open(path, encoding="utf-8") as handle:
        return Section(**json.load(handle))


# Column kinds, from the words of a column's name (split at "_", " ", "-"): p-values in scientific notation,
# hazard ratios and their limits to 2 decimals, other effect sizes to 3, whole numbers as integers.
P_VALUE_WORDS = frozenset({"p", "pval", "pvalue", "padj", "fdr", "fwer", "qval", "qvalue"})
HAZARD_WORDS = frozenset({"hr"})
EFFECT_WORDS = frozenset(
    {
        "log2fc",
        "lfc",
        "lfcse",
        "fold",
        "es",
        "nes",
        "rho",
        "auc",
        "c",
        "stat",
        "coef",
        "coefficient",
        "weight",
        "tau2",
        "i2",
    }
)
ENSEMBL_ID = re.compile(r"^ENS[A-Z]*G\d{11}(\.\d+)?$")
SYMBOL_COLUMNS = ("gene", "symbol", "gene_symbol")


def column_format(name: object, values: pd.Series, float_format: str | None = None) -> Callable[[Any], str]:
    """How the cells of column `name` are written; `float_format`, when given, is used for every float column."""
    import numpy as np
    import pandas as pd

    words = set(re.split(r"[^a-z0-9]+", str(name).lower()))
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return str
    if pd.api.types.is_integer_dtype(values):
        return lambda v: f"{int(v)}"
    if float_format is not None:
        return float_format.format
    if words & P_VALUE_WORDS:
        return lambda v: "0" if v == 0 else f"{v:.2e}"
    if words & HAZARD_WORDS:
        return lambda v: f"{v:.2f}"
    if words & EFFECT_WORDS:
        return lambda v: f"{v:.3f}"
    finite = values[np.isfinite(values)]
    if len(finite) and (finite == finite.round()).all():  # counts that became floats through a missing value
        return lambda v: f"{v:.0f}"
    return lambda v: f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def sort_value(value: Any) -> str:
    """A number as the report's script reads it back (JavaScript's Number()), at full precision."""
    import numpy as np

    if isinstance(value, (int, np.integer)):
        return str(int(value))
    number = float(value)
    return repr(number) if np.isfinite(number) else ("Infinity" if number > 0 else "-Infinity")


def table_html(
    frame: pd.DataFrame,
    *,
    index: bool = False,
    float_format: str | None = None,
    max_rows: int = 200,
    classes: str = "table",
) -> str:
    """An escaped HTML table, numbers formatted per column (column_format); long tables are cut at `max_rows`.

    A numeric cell keeps its full value in `data-value`, which the report's script sorts by and downloads. A gene
    symbol beside a `gene_id` column shows that id on hover.
    """
    import pandas as pd

    shown = (frame.reset_index() if index else frame).head(max_rows)
    names = [" ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in shown.columns]
    formats = [column_format(name, shown.iloc[:, i], float_format) for i, name in enumerate(names)]
    numeric = [
        pd.api.types.is_numeric_dtype(shown.iloc[:, i]) and not pd.api.types.is_bool_dtype(shown.iloc[:, i])
        for i in range(len(names))
    ]
    gene_ids = shown["gene_id"].astype(str).tolist() if "gene_id" in names else None
    lines = [
        f'<table class="{html.escape(classes)}">',
        "<thead><tr>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr></thead>",
        "<tbody>",
    ]
    for row_number, row in enumerate(shown.itertuples(index=False)):
        cells = []
        for i, value in enumerate(row):
            if value is None or (not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value)):
                cells.append("<td></td>")
            elif numeric[i]:
                cells.append(f'<td data-value="{sort_value(value)}">{html.escape(formats[i](value))}</td>')
            elif gene_ids and names[i] in SYMBOL_COLUMNS and ENSEMBL_ID.match(gene_ids[row_number]):
                cells.append(f'<td title="{html.escape(gene_ids[row_number])}">{html.escape(str(value))}</td>')
            else:
                cells.append(f"<td>{html.escape(str(value))}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</tbody></table>")
    text = "\n".join(lines)
    if len(frame) > max_rows:
        text += f'<p class="note">Showing {max_rows} of {len(frame)} rows; the full table is in the results folder.</p>'
    return text


_PNG_IMAGE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def embed_figures(page: str) -> str:
    """Size every embedded PNG and move the SVG it carries into a `data-svg-gzip` attribute.

    Each PNG is shown at its pixel width / PIXEL_DENSITY (read from its IHDR header). Its SVG (plots.SVG_CHUNK,
    gzipped) leaves the PNG, so the PNG download is a plain PNG, and stays gzipped in the page: the report's script
    unpacks it into the SVG download link (DecompressionStream), which keeps the report a third of the size that
    plain SVG data URIs would make it.
    """

    def embedded(match: re.Match[str]) -> str:
        chunks = png_chunks(base64.b64decode(match.group(1)))
        width = int.from_bytes(chunks[0][1][:4], "big") // PIXEL_DENSITY
        svg = [data for kind, data in chunks if kind == SVG_CHUNK]
        png = base64.b64encode(png_from_chunks([c for c in chunks if c[0] != SVG_CHUNK])).decode("ascii")
        attributes = f' width="{width}"' + (
            f' data-svg-gzip="{base64.b64encode(svg[0]).decode("ascii")}"' if svg else ""
        )
        return f'<img src="data:image/png;base64,{png}"{attributes}'

    return _PNG_IMAGE.sub(embedded, page)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["escape_text"] = html.escape
    return env


def render_report(sections: list[Section], *, cohort: str, title: str, simulated: bool) -> str:
    env = _environment()
    ordered = sorted(sections, key=lambda s: (s.order, s.id))
    rendered = []
    for section in ordered:
        body = env.get_template(f"sections/{section.template}").render(**section.context, section=section)
        rendered.append({"id": section.id, "title": section.title, "body": body, "warnings": section.warnings})
    summary = [{"text": line, "section": s.id} for s in ordered for line in s.summary]
    return embed_figures(
        env.get_template("report.html.j2").render(
            cohort=cohort,
            title=title,
            simulated=simulated,
            sections=rendered,
            summary=summary,
            script=(TEMPLATES / "static" / "tables.js").read_text(encoding="utf-8"),
            generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )
