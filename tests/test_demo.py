"""The simulated demo: real formats, deterministic output, and truth that matches the data."""

import gzip
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from ferrostem.demo import DemoParameters, demo_genes, write_demo
from ferrostem.sources import gdc, geo


def test_demo_genes_are_real_symbols_with_ensembl_ids():
    genes = demo_genes()
    assert len(genes) > 5000
    assert genes["symbol"].is_unique and genes["gene_id"].is_unique
    assert genes["gene_id"].str.fullmatch(r"ENSG\d{11}").all()
    for gene in ["GPX4", "SLC7A11", "AIFM2", "ACSL4", "TFRC", "NCOA4", "FTH1", "NFE2L2", "CD8A", "PRF1"]:
        assert gene in set(genes["symbol"])


def test_files_hits_match_files_on_disk(demo_dir):
    hits = gdc.load_json_hits(demo_dir / "gdc/files.json")
    assert len(hits) == 123
    for hit in hits[:10]:
        path = demo_dir / "gdc/data" / hit["file_id"] / hit["file_name"]
        data = path.read_bytes()
        assert hashlib.md5(data).hexdigest() == hit["md5sum"]
        assert len(data) == hit["file_size"]
    star = gdc.read_star_counts(demo_dir / "gdc/data" / hits[0]["file_id"] / hits[0]["file_name"])
    assert star.gene_model == "GENCODE v36"
    assert star.genes["gene_id"].str.endswith("_PAR_Y").sum() > 0
    assert np.allclose(star.genes["tpm_unstranded"].sum(), 1e6, rtol=1e-3)
    assert (star.genes["stranded_first"] + star.genes["stranded_second"] == star.genes["unstranded"]).all()
    assert not star.genes["gene_id"].str.fullmatch(r"ENSG\d{11}\.[1-9]\d*").any(), "simulated IDs carry version .0"


def test_series_matrix_and_annotation(demo_dir):
    series = geo.read_series_matrix(demo_dir / "geo/GSE0000_series_matrix.txt.gz")
    assert series.table.shape[1] == 100
    assert {"tissue", "patient", "survival months", "survival status"} <= set(series.characteristics)
    assert "SIMULATED" in series.series["title"][0]
    annotation = geo.read_platform_annotation(demo_dir / "geo/GPL0000.annot.gz")
    assert (annotation["symbols"].map(len) > 1).sum() == 60
    assert (annotation["symbols"].map(len) == 0).sum() == 40


def test_truth_describes_the_data(demo_dir, demo_rnaseq):
    truth = json.loads((demo_dir / "truth/truth.json").read_text())
    assert truth["hazard_ratio_per_sd"]["value"] == 1.8
    de = pd.read_csv(demo_dir / "truth/de_truth.tsv", sep="\t").set_index("symbol")
    assert de.loc["SLC7A11", "planted_log2fc"] == 2.0
    assert (de["planted_log2fc"] != 0).sum() == 600 + len(truth["tumor_vs_normal_named"])
    # realised fold changes of the NB means equal the planted ones: the latent programmes do not bias them
    planted = de[de["planted_log2fc"] != 0]
    assert np.corrcoef(planted["planted_log2fc"], planted["log2fc_of_means"])[0, 1] > 0.95
    # observed tumour/normal ratios of median-of-ratios normalised counts (Anders & Huber 2010) follow the plan
    adata = demo_rnaseq
    tumour = (adata.obs["tissue"] == "tumor").to_numpy()
    counts = adata.layers["counts"].astype(float)
    expressed = (counts > 0).all(axis=0)
    log_geo_mean = np.log(counts[:, expressed]).mean(axis=0)
    size_factors = np.exp(np.median(np.log(counts[:, expressed]) - log_geo_mean, axis=1))
    normalised = counts / size_factors[:, None]
    for gene in ["SLC7A11", "GPX4", "NCOA4", "HMOX1"]:
        column = adata.var_names.get_loc(gene)
        observed = np.log2(normalised[tumour, column].mean() / normalised[~tumour, column].mean())
        assert observed == pytest.approx(de.loc[gene, "planted_log2fc"], abs=0.35), gene
    # the latent ferroptosis-resistance factor drives its programme within tumours
    latent = pd.read_csv(demo_dir / "truth/latent_rnaseq.tsv", sep="\t").set_index("sample_id")
    obs_latent = latent.loc[adata.obs_names[tumour], "ferroptosis_resistance"]
    gpx4 = adata[tumour, "SLC7A11"].layers["log2"].ravel()
    assert np.corrcoef(obs_latent, gpx4)[0, 1] > 0.5


def test_demo_is_deterministic(tmp_path):
    small = DemoParameters(n_tumor=12, n_normal=4, n_extra_aliquots=1, n_random_de=50, geo_n_tumor=12, geo_n_normal=4)
    write_demo(tmp_path / "a", small)
    write_demo(tmp_path / "b", small, workers=2)  # the STAR files written on two threads: the same bytes
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert sum(1 for f in files if f.parent.name == "data") == 17  # 16 samples + 1 extra aliquot
    for relative in files:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative
    series = "mirror/ftp.ncbi.nlm.nih.gov/geo/series/GSE0nnn/GSE0000/matrix/GSE0000_series_matrix.txt.gz"
    for relative in [
        "mirror/api.gdc.cancer.gov/files/TCGA-DEMO.json",
        "mirror/api.gdc.cancer.gov/cases/TCGA-DEMO.json",
        series,
        "mirror/ftp.ncbi.nlm.nih.gov/geo/platforms/GPL0nnn/GPL0000/annot/GPL0000.annot.gz",
        "truth/de_truth.tsv",
    ]:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative
    with gzip.open(tmp_path / "a" / series, "rt") as handle:
        assert "SIMULATED" in handle.readline()
