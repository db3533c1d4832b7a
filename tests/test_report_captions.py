"""Snakemake's own report renders every caption as reStructuredText: none may render a Docutils error box."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
from docutils import nodes
from docutils.core import publish_doctree

CAPTIONS = sorted((Path(__file__).resolve().parents[1] / "workflow" / "report").glob("*.rst"))


def system_messages(rst: str) -> list[str]:
    """Problems Docutils reports (level >= warning); in the rendered page each becomes an error box."""
    stream = io.StringIO()
    doctree = publish_doctree(rst, settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": stream})
    problems = [node.astext() for node in doctree.findall(nodes.problematic)]
    return stream.getvalue().splitlines() + problems


def test_a_substitution_typo_is_caught() -> None:
    assert system_messages("share of |weight| missing")


@pytest.mark.parametrize("caption", CAPTIONS, ids=[path.name for path in CAPTIONS])
def test_caption_renders_without_docutils_messages(caption: Path) -> None:
    snakemake = SimpleNamespace(
        wildcards=SimpleNamespace(cohort="demo_tcga", comparison="tumour_vs_normal"),
        config={},
        params=SimpleNamespace(),
        input=SimpleNamespace(),
        output=SimpleNamespace(),
    )
    text = (
        jinja2.Environment(undefined=jinja2.StrictUndefined)
        .from_string(caption.read_text())
        .render(snakemake=snakemake)
    )
    assert system_messages(text) == [], caption.name
