"""The per-cohort HTML report: a list of sections, each a template plus the data it shows.

A stage adds its section by writing a `Section` (JSON) with `write_section`; the report rule renders
every section it is given, in `order`, into one self-contained HTML file. Adding a section never means
editing another: write a template in templates/sections/ and a rule that produces the JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from ..files import write_json
from ..plots import PIXEL_DENSITY

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


def table_html(frame: pd.DataFrame, *, index: bool = False, float_format: str = "{:.3g}", max_rows: int = 200,
               classes: str = "table") -> str:
    """An escaped HTML table; long tables are cut at `max_rows` with a note."""
    shown = frame.head(max_rows)
    formatters = {c: (lambda v, f=float_format: "" if pd.isna(v) else f.format(v))
                  for c in shown.columns if pd.api.types.is_float_dtype(shown[c])}
    text = shown.to_html(index=index, escape=True, classes=classes, border=0, formatters=formatters, na_rep="")
    if len(frame) > max_rows:
        text += f'<p class="note">Showing {max_rows} of {len(frame)} rows; the full table is in the results folder.</p>'
    return text


_PNG_IMAGE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def show_at_half_size(page: str) -> str:
    """Give every embedded PNG a display width of its pixel width / PIXEL_DENSITY (read from its IHDR header)."""
    def sized(match: re.Match[str]) -> str:
        header = base64.b64decode(match.group(1)[:32])
        width = int.from_bytes(header[16:20], "big") // PIXEL_DENSITY
        return f'{match.group(0)} width="{width}"'

    return _PNG_IMAGE.sub(sized, page)


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
    return show_at_half_size(env.get_template("report.html.j2").render(
        cohort=cohort, title=title, simulated=simulated, sections=rendered, summary=summary,
        script=(TEMPLATES / "static" / "tables.js").read_text(encoding="utf-8"),
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    ))
