import numpy as np
import pytest

from ferrostem.report import render_report
from ferrostem.cohort_report import cohort_section, harmonisation_table


@pytest.mark.parametrize("n_samples", [1, 2])
def test_tiny_cohort_summary_explains_missing_pca_and_keeps_other_sections(demo_rnaseq, n_samples):
    tiny = demo_rnaseq[:n_samples].copy()
    section = cohort_section(tiny, "tiny")
    assert f"PCA not drawn: the cohort has {n_samples} sample(s); two principal components need at least 3" in section.warnings
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
    rows = dict(zip(table["what"], table["count"]))
    record = demo_rnaseq.uns["harmonisation"]
    assert rows["symbols on several gene ids"] == len(record["symbols_duplicated"])
    assert rows["clinical records without a sample"] == 2
    assert "TCGA-ZZ-9000" in table.set_index("what").loc["clinical records without a sample", "ids (first 10)"]
    assert "probes with missing values" not in rows  # nothing happened: no row
