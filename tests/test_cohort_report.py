import numpy as np
import pytest

from ferrostem.report import render_report
from ferrostem.cohort_report import cohort_section, harmonisation_table


@pytest.mark.parametrize("n_samples", [1, 2])
def test_tiny_cohort_summary_explains_missing_pca_and_keeps_other_sections(demo_rnaseq, n_samples):
    tiny = demo_rnaseq[:n_samples].copy()
    section = cohort_section(tiny, "tiny")
    assert (
        f"PCA not drawn: the cohort has {n_samples} sample(s); two principal components need at least 3"
        in section.warnings
    )
    captions = [f["caption"] for f in section.context["figures"]]
    assert captions == ["Sequencing depth per sample."]
    assert section.context["clinical"] and section.context["by_type"]
    assert "tiny" in render_report([section], cohort="tiny", title="tiny", simulated=True)


def test_three_samples_draw_the_pca(demo_rnaseq):
    section = cohort_section(demo_rnaseq[:3].copy(), "three")
    assert section.context["figures"][0]["caption"].startswith("Principal components")
    assert not any(w.startswith("PCA not drawn") for w in section.warnings)


def test_pca_skips_genes_with_missing_values(demo_array):
    adata = demo_array[:10].copy()
    adata.layers["log2"][0, :5] = np.nan
    section = cohort_section(adata, "gaps")
    assert section.context["figures"][0]["caption"].startswith("Principal components")


def test_harmonisation_table_lists_rules_that_changed_data(demo_rnaseq):
    from ferrostem.cohort import uns_to_python

    table = harmonisation_table(uns_to_python(demo_rnaseq.uns["harmonisation"]))
    by_source = table.set_index("source")
    record = demo_rnaseq.uns["harmonisation"]
    assert by_source.at["symbols_duplicated", "count"] == len(record["symbols_duplicated"])
    assert by_source.at["symbols_duplicated", "rule"].startswith("symbols on several gene ids: ")
    assert by_source.at["clinical_without_samples", "count"] == 2
    assert "TCGA-ZZ-9000" in by_source.at["clinical_without_samples", "example ids"]
    assert "missing_values" not in by_source.index  # nothing happened: no row


def test_cohort_section_shows_one_rules_table_with_the_clinical_rules(demo_rnaseq):
    """The clinical records' {rule, count, ids} records and the data rules share one table (rule, count, example
    ids, source); the section renders it once."""
    from ferrostem.cohort import uns_to_python

    record = uns_to_python(demo_rnaseq.uns["harmonisation"])
    table = harmonisation_table(record)
    assert list(table.columns) == ["rule", "count", "example ids", "source"]
    for name, applied in record["clinical_rules"].items():
        row = table.set_index("source").loc[f"clinical_rules: {name}"]
        assert row["rule"] == applied["rule"] and row["count"] == applied["count"]
        shown = list(applied["ids"])[:10]
        assert row["example ids"].startswith(", ".join(shown))
        if len(applied["ids"]) > 10:
            assert row["example ids"].endswith(f" ... ({len(applied['ids']) - 10} more)")
    assert "clinical_without_samples" in set(table["source"])
    section = cohort_section(demo_rnaseq, "demo")
    assert set(section.context) == {"facts", "by_type", "endpoints", "clinical", "figures", "harmonisation"}
    page = render_report([section], cohort="demo", title="demo", simulated=True)
    assert page.count("Harmonisation rules that changed the data") == 1
    assert "rules applied" not in page
    assert "diagnosis_is_primary_disease == true" in page
