import json

import numpy as np
import pandas as pd
import pytest

from ferrostem.cohort import HarmonisationRules, harmonise_genes, join_clinical, select_samples, strip_ensembl_version
from ferrostem.errors import CohortError, ConfigError, InputFormatError
from ferrostem.harmonise import geo_obs, harmonise_cohort, other_tissue_rule
from ferrostem.scales import looks_linear_scale


def test_strip_version():
    assert strip_ensembl_version("ENSG00000000003.15") == "ENSG00000000003"
    assert strip_ensembl_version("ENSG00000182378.14_PAR_Y") == "ENSG00000182378_PAR_Y"
    assert strip_ensembl_version("DEMODUP00001.1") == "DEMODUP00001.1"


GENES = pd.DataFrame(
    {
        "gene_id": ["ENSG01.1", "ENSG01.1_PAR_Y", "ENSG02.3", "ENSG03.1", "ENSG04.2", "ENSG05.1"],
        "gene_name": ["CD99", "CD99", "GPX4", "GPX4", "", "TP53"],
        "gene_type": ["protein_coding"] * 6,
    }
)
COUNTS = np.array([[10, 20], [1, 1], [100, 300], [5, 5], [7, 8], [2, 2]])


def with_prefix(frame):
    frame = frame.copy()
    frame["gene_id"] = frame["gene_id"].str.replace("ENSG", "ENSG000000000", regex=False)
    return frame


@pytest.mark.parametrize("par_y, expected_cd99", [("drop", [10, 20]), ("sum", [11, 21])])
def test_par_y_rule(par_y, expected_cd99):
    genes, counts, _, report = harmonise_genes(
        with_prefix(GENES), COUNTS, COUNTS * 1.0, HarmonisationRules(par_y=par_y, duplicate_symbols="sum")
    )
    assert counts[list(genes["symbol"]).index("CD99")].tolist() == expected_cd99
    assert report.par_y_rows == 1


def test_duplicate_symbols_max_mean_and_sum():
    genes, counts, _, report = harmonise_genes(with_prefix(GENES), COUNTS, COUNTS * 1.0, HarmonisationRules())
    gpx4 = list(genes["symbol"]).index("GPX4")
    assert counts[gpx4].tolist() == [100, 300]
    assert genes["gene_id"].iloc[gpx4] == "ENSG00000000002"
    assert report.symbols_duplicated == ["GPX4"]
    genes, counts, _, _ = harmonise_genes(
        with_prefix(GENES), COUNTS, COUNTS * 1.0, HarmonisationRules(duplicate_symbols="sum")
    )
    gpx4 = list(genes["symbol"]).index("GPX4")
    assert counts[gpx4].tolist() == [105, 305]
    assert genes["gene_id"].iloc[gpx4] == "ENSG00000000002;ENSG00000000003"


def test_gene_without_symbol_keeps_its_id():
    genes, _, _, report = harmonise_genes(with_prefix(GENES), COUNTS, COUNTS * 1.0, HarmonisationRules())
    assert "ENSG00000000004" in set(genes["symbol"])
    assert report.genes_without_symbol == 1


def test_bad_rule_value():
    with pytest.raises(ConfigError, match="par_y 'keep'"):
        harmonise_genes(GENES, COUNTS, COUNTS * 1.0, HarmonisationRules(par_y="keep"))
    with pytest.raises(ConfigError, match="unknown keys \\['colapse'\\]"):
        HarmonisationRules.from_config({"colapse": "x"})


def sheet():
    return pd.DataFrame(
        {
            "sample_id": [
                "TCGA-AA-0001-01A",
                "TCGA-AA-0001-01B",
                "TCGA-AA-0001-11A",
                "TCGA-AA-0002-01A",
                "TCGA-AA-0002-01A",
                "TCGA-AA-0003-06A",
            ],
            "patient_id": ["TCGA-AA-0001"] * 3 + ["TCGA-AA-0002"] * 2 + ["TCGA-AA-0003"],
            "sample_type": [
                "Primary Tumor",
                "Primary Tumor",
                "Solid Tissue Normal",
                "Primary Tumor",
                "Primary Tumor",
                "Metastatic",
            ],
            "sample_type_code": ["01", "01", "11", "01", "01", "06"],
            "vial": ["A", "B", "A", "A", "A", "A"],
            "depth": [10, 90, 10, 5, 50, 10],
        },
        index=["f1", "f2", "f3", "f4", "f5", "f6"],
    )


def test_one_sample_per_patient():
    kept, excluded, dropped = select_samples(sheet(), HarmonisationRules())
    assert list(kept.index) == ["f1", "f3", "f5"]  # first vial beats depth; among aliquots the deepest
    assert excluded == {"Metastatic": 1}
    assert dropped == ["TCGA-AA-0001-01B (f2)", "TCGA-AA-0002-01A (f4)"]


def test_all_samples_but_one_file_per_sample():
    kept, _, _ = select_samples(
        sheet(), HarmonisationRules(one_sample_per_patient=False, sample_types=["Primary Tumor", "Metastatic"])
    )
    assert list(kept.index) == ["f1", "f2", "f5", "f6"]


def test_clinical_mismatch_warn_and_error():
    samples = pd.DataFrame({"patient_id": ["P1", "P2"]}, index=["S1", "S2"])
    clinical = pd.DataFrame({"OS": [1.0, 0.0]}, index=pd.Index(["P1", "P9"], name="patient_id"))
    joined, orphans, missing, warnings = join_clinical(samples, clinical, HarmonisationRules())
    assert orphans == ["P9"] and missing == ["S2"]
    assert "1 clinical records match no expression sample: P9" in warnings[0]
    assert "1 samples have no clinical record: S2" in warnings[1]
    assert joined.loc["S1", "OS"] == 1.0 and np.isnan(joined.loc["S2", "OS"])
    with pytest.raises(CohortError, match="P9.*S2"):
        join_clinical(samples, clinical, HarmonisationRules(clinical_mismatch="error"))


def test_geo_missing_key_lists_found_keys():
    samples = pd.DataFrame({"tissue": ["tumor"], "os months": [3.0]}, index=["GSM1"])
    with pytest.raises(ConfigError, match=r"'survival months'.*OS\.time.*keys found: \['tissue', 'os months'\]"):
        geo_obs(
            samples,
            {"fields": {"OS.time": "survival months", "OS": "tissue"}, "time_unit": "months"},
            source="GSE1_series_matrix.txt.gz",
        )


def test_geo_survival_times_need_a_declared_unit():
    samples = pd.DataFrame({"tissue": ["tumor"], "survival months": [3.0], "status": ["1"]}, index=["GSM1"])
    fields = {"OS.time": "survival months", "OS": "status"}
    with pytest.raises(
        ConfigError,
        match=r"GSE1_series_matrix.txt.gz: geo.fields maps OS.time but geo.time_unit "
        r"is not set",
    ):
        geo_obs(samples, {"fields": fields}, source="GSE1_series_matrix.txt.gz")
    # a time without its status (or the reverse) was silently an endpoint that is never analysed
    with pytest.raises(ConfigError, match=r"GSE1: geo.fields maps OS.time but not OS: an endpoint needs both"):
        geo_obs(samples, {"fields": {"OS.time": "survival months"}, "time_unit": "months"}, "GSE1")
    obs = geo_obs(samples, {"fields": fields, "time_unit": "months"}, "GSE1")
    assert obs.at["GSM1", "OS.time"] == pytest.approx(3 * 365.25 / 12)


SUPPLEMENT_SOURCE = "GSE1_series_matrix.txt.gz + GSE1_Extra_Supplement.txt.gz"


def test_geo_time_unit_not_understood_names_the_key():
    samples = pd.DataFrame({"Survival months": [3.0, 5.0], "Survival status": [1, 0]}, index=["GSM1", "GSM2"])
    mapping = {"fields": {"OS.time": "Survival months", "OS": "Survival status"}, "time_unit": "fortnights"}
    with pytest.raises(ConfigError, match=r"time_unit = 'fortnights' is not understood; use one of days, weeks"):
        geo_obs(samples, mapping, SUPPLEMENT_SOURCE)


def test_geo_time_cells_with_units_are_named_not_dropped():
    # "12 months" read as missing would drop the sample from every survival analysis without a word
    samples = pd.DataFrame(
        {"Survival months": ["10.5", "12 months", "NA", ""], "Survival status": ["1", "0", "0", "1"]},
        index=["GSM1", "GSM2", "GSM3", "GSM4"],
    )
    mapping = {
        "fields": {"OS.time": "survival months", "OS": "survival status"},
        "time_unit": "months",
        "event_values": ["1"],
    }
    with pytest.raises(
        InputFormatError,
        match=r"GSE1_Extra_Supplement.txt.gz: column 'survival months' \(OS.time\) "
        r"holds 1 value\(s\) that are not a number of months"
        r".*GSM2: '12 months'",
    ):
        geo_obs(samples, mapping, SUPPLEMENT_SOURCE)
    samples.loc["GSM2", "Survival months"] = "12"
    obs = geo_obs(samples, mapping, SUPPLEMENT_SOURCE)
    assert obs["OS.time"].round(2).tolist()[:2] == [319.59, 365.25] and obs["OS.time"].iloc[2:].isna().all()


def test_geo_endpoint_without_events_names_file_column_and_values():
    # the supplement says Dead/Alive, the config expects "1": every sample would silently be censored
    samples = pd.DataFrame(
        {"Survival status": ["Dead", "Alive", "NA"], "Survival months": [1, 2, 3]}, index=["GSM1", "GSM2", "GSM3"]
    )
    mapping = {
        "fields": {"OS": "Survival status", "OS.time": "Survival months"},
        "event_values": ["1"],
        "time_unit": "months",
    }
    with pytest.raises(
        ConfigError,
        match=r"GSE1_Extra_Supplement.txt.gz: column 'Survival status' \(OS\) "
        r"has no event: none of its values \['alive', 'dead'\] "
        r"is in the event_values \['1'\] of geo.fields",
    ):
        geo_obs(samples, mapping, SUPPLEMENT_SOURCE)
    obs = geo_obs(samples, {**mapping, "event_values": ["dead"]}, SUPPLEMENT_SOURCE)
    assert obs["OS"].tolist()[:2] == [1.0, 0.0] and np.isnan(obs["OS"].iloc[2])
    unknown = samples.assign(**{"Survival status": ["NA", "", "n/a"]})  # no status at all: not an error
    assert geo_obs(unknown, mapping, SUPPLEMENT_SOURCE)["OS"].isna().all()
    censored = samples.assign(**{"Survival status": ["0", "0", "NA"]})  # only censoring codes: kept (and noted)
    assert geo_obs(censored, mapping, SUPPLEMENT_SOURCE)["OS"].tolist()[:2] == [0.0, 0.0]


def test_geo_unknown_tissue_value():
    samples = pd.DataFrame({"tissue": ["tumor", "cirrhosis"]}, index=["GSM1", "GSM2"])
    mapping = {"fields": {"tissue": "tissue"}, "tumor_values": ["tumor"], "normal_values": ["normal"]}
    obs = geo_obs(samples, mapping, "x")
    assert obs["tissue"].tolist() == ["tumor", "other"] and obs["tissue_value"].tolist() == ["tumor", "cirrhosis"]
    with pytest.raises(ConfigError, match="cirrhosis"):
        other_tissue_rule(obs, {**mapping, "other_tissue": "error"}, "x")
    kept, record, _ = other_tissue_rule(obs, mapping, "x")
    assert list(kept.index) == ["GSM1"] and record["samples"] == ["GSM2"]


def test_log_scale_detection():
    rng = np.random.default_rng(1)
    assert looks_linear_scale(rng.lognormal(6, 2, size=1000))
    assert not looks_linear_scale(rng.normal(7, 2, size=1000))


def test_demo_gdc_cohort(demo_rnaseq, demo_dir):
    adata = demo_rnaseq
    truth = json.loads((demo_dir / "truth/truth.json").read_text())
    assert adata.shape == (120, 9400)
    assert set(adata.layers) == {"counts", "tpm", "log2"}
    assert adata.layers["counts"].dtype == np.int64
    assert np.allclose(adata.X, np.log2(adata.layers["tpm"] + 1), atol=1e-4)
    assert np.allclose(adata.layers["tpm"].sum(axis=1), 1e6, rtol=1e-3)  # decoys and PAR rows carry ~no TPM
    assert (adata.obs["tissue"] == "normal").sum() == 20
    assert adata.obs["patient_id"][adata.obs["tissue"] == "tumor"].is_unique
    assert not adata.var["gene_id"].str.contains(r"\.").any()
    assert adata.var.loc["GPX4", "gene_id"] == "ENSG00000167468"
    record = adata.uns["harmonisation"]
    assert record["symbols_duplicated"] == sorted(truth["gdc"]["duplicate_symbol_decoys"])
    assert record["par_y_rows"] == len(set(truth["gdc"]["par_y_genes"]) & set(adata.var_names))
    assert len(record["duplicates_dropped"]) == truth["gdc"]["extra_tumour_aliquots"]
    assert record["clinical_without_samples"] == ["TCGA-ZZ-9000", "TCGA-ZZ-9001"]
    tumours = adata.obs[adata.obs["tissue"] == "tumor"]
    assert tumours["OS"].sum() == truth["events"]["gdc"]
    assert tumours["OS.time"].min() > 0
    assert adata.uns["provenance"]["simulated"] is True or adata.uns["provenance"]["simulated"] == 1


def test_demo_geo_cohort(demo_array):
    adata = demo_array
    assert adata.shape == (100, 9400)
    assert "counts" not in adata.layers
    assert adata.uns["assay"] == "microarray"
    assert adata.uns["harmonisation"]["probes_multi_symbol"] == 60
    assert adata.uns["harmonisation"]["probes_unmapped"] == 40
    assert adata.uns["harmonisation"]["log_transformed"] in (False, 0)
    assert (adata.obs["tissue"] == "normal").sum() == 20
    assert adata.obs["OS.time"].max() == pytest.approx(1825.0, abs=2)  # 60 months (administrative censoring), in days
    assert adata.obs["stage"].dropna().str.startswith("Stage ").all()


def test_missing_star_file_named(demo_dir, tmp_path):
    import shutil

    broken = tmp_path / "gdc"
    shutil.copytree(demo_dir / "gdc", broken)
    victim = next((broken / "data").iterdir())
    shutil.rmtree(victim)
    with pytest.raises(InputFormatError, match="STAR files listed in files.json are missing"):
        harmonise_cohort({"source": "gdc"}, broken)


def test_missing_value_rule_drops_sparse_probes_and_samples_then_imputes_medians():
    from ferrostem.cohort import MissingValueRule, resolve_missing

    table = pd.DataFrame(
        {
            "S1": [1.0, 5.0, np.nan, 2.0],
            "S2": [2.0, 6.0, np.nan, np.nan],
            "S3": [3.0, np.nan, 1.0, np.nan],
            "S4": [4.0, 8.0, np.nan, np.nan],
            "S5": [5.0, 9.0, 2.0, np.nan],
            "S6": [6.0, 7.0, 3.0, np.nan],
        },
        index=["p_complete", "p_one_missing", "p_half_missing", "p_mostly_missing"],
    )
    kept, record, warnings = resolve_missing(table, MissingValueRule(max_fraction=0.5), "GSE1_series_matrix.txt.gz")
    assert list(kept.index) == ["p_complete", "p_one_missing", "p_half_missing"]  # 5 of 6 missing: dropped
    assert record["probes_dropped_ids"] == ["p_mostly_missing"] and record["samples_dropped"] == []
    assert kept.loc["p_one_missing", "S3"] == 7.0  # median of 5, 6, 8, 9, 7
    assert kept.loc["p_half_missing", ["S1", "S2", "S4"]].tolist() == [2.0, 2.0, 2.0]
    assert record["values_imputed"] == 4 and record["probes_imputed"] == 2 and record["values_missing"] == 9
    assert "p_mostly_missing" in warnings[0] and "GSE1_series_matrix.txt.gz" in warnings[0]
    assert not kept.isna().any().any()

    kept, record, _ = resolve_missing(table, MissingValueRule(max_fraction=0.5, impute="drop"), "x")
    assert list(kept.index) == ["p_complete"] and record["probes_dropped"] == 3 and record["values_imputed"] == 0

    strict, record, _ = resolve_missing(table, MissingValueRule(max_fraction=0.2), "x")
    assert list(strict.index) == ["p_complete", "p_one_missing"] and record["samples_dropped"] == ["S3"]

    complete = table.loc[["p_complete"]]
    same, record, warnings = resolve_missing(complete, MissingValueRule(), "x")
    assert same is complete and warnings == [] and record["values_missing"] == 0
    with pytest.raises(CohortError, match="no complete probe and sample left.*harmonise.missing.max_fraction"):
        resolve_missing(table.loc[["p_mostly_missing"]], MissingValueRule(max_fraction=0.5), "x")
    with pytest.raises(ConfigError, match="unknown keys \\['fraction'\\]"):
        HarmonisationRules.from_config({"missing": {"fraction": 0.1}})


def _rewrite_series_table(path, change):
    """Apply `change(probe_id, cells) -> cells` to every table row of a gzipped series matrix."""
    import gzip

    lines = gzip.open(path, "rt").read().splitlines()
    begin = next(i for i, line in enumerate(lines) if line.startswith("!series_matrix_table_begin"))
    end = next(i for i, line in enumerate(lines) if line.startswith("!series_matrix_table_end"))
    for i in range(begin + 2, end):
        probe, *cells = lines[i].split("\t")
        lines[i] = "\t".join([probe] + change(probe.strip('"'), cells))
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")


def test_geo_matrix_with_missing_values_is_harmonised_and_summarised(demo_dir, tmp_path):
    import shutil

    from conftest import DEMO_GEO_MAPPING
    from ferrostem.sources.geo import read_platform_annotation, read_series_matrix
    from ferrostem.cohort_report import cohort_section

    raw = tmp_path / "geo"
    shutil.copytree(demo_dir / "geo", raw)
    matrix = next(raw.glob("GSE0000*_series_matrix.txt.gz"))
    original = read_series_matrix(matrix).table
    annotation = read_platform_annotation(next(raw.glob("GPL0000.annot*")))
    single = annotation[annotation["symbols"].map(len) == 1].copy()
    single["symbol"] = single["symbols"].str[0]
    one_probe = single[~single["symbol"].duplicated(keep=False)].set_index("probe_id")["symbol"]
    imputed_probe, dropped_probe = one_probe.index[0], one_probe.index[1]
    samples = list(original.columns)
    broken_sample = samples[7]

    def plant(probe, cells):
        cells = list(cells)
        if probe == dropped_probe:  # missing in every sample: above any max_fraction
            cells = ["null"] * len(cells)
        elif probe == imputed_probe:  # missing in 3 samples: imputed
            for j in (0, 1, 2):
                cells[j] = ""
        cells[7] = "null"  # one sample missing everywhere: dropped
        return cells

    _rewrite_series_table(matrix, plant)
    adata = harmonise_cohort({"source": "geo", "accession": "GSE0000", "geo": DEMO_GEO_MAPPING}, raw)
    assert np.isfinite(adata.X).all() and all(np.isfinite(m).all() for m in adata.layers.values())
    assert broken_sample not in adata.obs_names and adata.n_obs == len(samples) - 1
    assert one_probe[dropped_probe] not in adata.var_names
    kept = [s for s in samples if s != broken_sample]
    median = original.loc[imputed_probe, kept].iloc[3:].median()
    gene = one_probe[imputed_probe]
    assert adata[samples[:3], gene].X.ravel() == pytest.approx([median] * 3, abs=1e-4)
    record = adata.uns["harmonisation"]["missing_values"]
    assert record["samples_dropped"] == [broken_sample]
    assert record["probes_dropped"] == 1 and list(record["probes_dropped_ids"]) == [dropped_probe]
    assert record["values_imputed"] == 3 and record["probes_imputed"] == 1
    assert record["values_missing"] == len(samples) + 3 + len(original) - 1
    assert adata.uns["harmonisation"]["rules"]["missing"]["max_fraction"] == 0.2
    section = cohort_section(adata, "demo with missing values")
    assert any("missing values in GSE0000_series_matrix.txt.gz" in w and broken_sample in w for w in section.warnings)
    assert "missing values" in section.context["harmonisation"] and dropped_probe in section.context["harmonisation"]
