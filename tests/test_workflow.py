"""End to end: the demo workflow run once with Snakemake (fixture `workflow_run`), outputs checked."""

import re

import anndata as ad
import h5py
import pytest

from conftest import REPO, run_snakemake

pytestmark = pytest.mark.e2e


def test_cohort_files(workflow_run):
    rnaseq = ad.read_h5ad(workflow_run / "results/demo_tcga/cohort.h5ad")
    assert rnaseq.shape == (120, 9400)
    assert set(rnaseq.layers) == {"counts", "tpm", "log2"}
    assert rnaseq.uns["provenance"]["simulated"]
    assert len(rnaseq.uns["provenance"]["input_sha256"]["files.json"]) == 64
    array = ad.read_h5ad(workflow_run / "results/demo_geo/cohort.h5ad")
    assert array.shape == (100, 9400)
    assert array.uns["assay"] == "microarray"
    with h5py.File(workflow_run / "results/demo_tcga/cohort.h5ad") as stored:  # written without compression
        assert {stored["layers"][name].compression for name in stored["layers"]} == {None}


@pytest.mark.parametrize(
    "cohort, samples", [("demo_tcga", "100 tumour and 20 normal"), ("demo_geo", "80 tumour and 20 normal")]
)
def test_report_is_self_contained(workflow_run, cohort, samples):
    html = (workflow_run / f"results/{cohort}/report.html").read_text()
    assert "SIMULATED DATA" in html
    assert samples in html
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) >= 3 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(?!data:|#)', html), "the report must not link to external files"
    for heading in ["Cohort", "Provenance", "Samples by type", "Input checksums", "Software"]:
        assert heading in html
    assert "snakemake" in html and "anndata" in html


def test_report_names_harmonisation_decisions(workflow_run):
    html = (workflow_run / "results/demo_tcga/report.html").read_text()
    assert "2 clinical records match no expression sample: TCGA-ZZ-9000, TCGA-ZZ-9001" in html
    assert "TCGA-ZZ-0012-01B" in html  # a second tumour vial, dropped by the one-sample-per-patient rule


def test_de_section_shows_symbols_and_the_real_table_path(workflow_run):
    html = (workflow_run / "results/demo_tcga/report.html").read_text()
    assert "&lt;cohort&gt;" not in html
    assert "results/demo_tcga/de/tumour_vs_normal/de.tsv" in html
    top = html[html.index("Top genes by adjusted p-value") :]
    first_row = re.search(r"<tbody>\s*<tr>\s*<td[^>]*>([^<]+)</td>\s*<td>(ENSG\d+)", top)
    assert first_row and not first_row.group(1).startswith("ENSG"), "symbol first, Ensembl id beside it"


def test_rerun_is_a_no_op(workflow_run):
    result = run_snakemake(workflow_run, "--configfile", str(workflow_run / "config/config.yaml"), "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_snakemake_lint_is_clean(tmp_path):
    result = run_snakemake(REPO, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakemake_report(workflow_run, tmp_path):
    target = tmp_path / "snakemake-report.html"
    run_snakemake(workflow_run, "--configfile", str(workflow_run / "config/config.yaml"), "--report", str(target))
    text = target.read_text(errors="replace")
    assert "Cohort reports" in text and "demo_tcga" in text
