import gzip

import numpy as np
import pandas as pd
import pytest

from ferrostem.errors import CohortError, ConfigError, InputFormatError
from ferrostem.sources import geo

MATRIX = """!Series_title\t"A test series"
!Series_geo_accession\t"GSE1"
!Series_platform_id\t"GPL1"
!Sample_title\t"t1"\t"n1"\t"t2"
!Sample_geo_accession\t"GSM1"\t"GSM2"\t"GSM3"
!Sample_characteristics_ch1\t"tissue: tumor"\t"tissue: normal"\t"tissue: tumor"
!Sample_characteristics_ch1\t"os (months): 12.5"\t"os (months): 3"\t""
!Sample_characteristics_ch1\t"grade: G1"\t"grade: G2"\t"grade: G3"
!series_matrix_table_begin
"ID_REF"\t"GSM1"\t"GSM2"\t"GSM3"
"p1"\t1.5\t2.5\t3.5
"p2"\tnull\t2\t4
"p3"\t7\t8\t9
!series_matrix_table_end
"""


def write(tmp_path, text, name="GSE1_series_matrix.txt.gz"):
    path = tmp_path / name
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    return path


def test_series_matrix(tmp_path):
    parsed = geo.read_series_matrix(write(tmp_path, MATRIX))
    assert parsed.accession == "GSE1"
    assert list(parsed.table.columns) == ["GSM1", "GSM2", "GSM3"]
    assert np.isnan(parsed.table.loc["p2", "GSM1"])
    assert parsed.samples.loc["GSM2", "tissue"] == "normal"
    assert parsed.samples["os (months)"].dtype.kind == "f"
    assert parsed.samples.loc["GSM1", "os (months)"] == 12.5
    assert np.isnan(parsed.samples.loc["GSM3", "os (months)"])
    assert parsed.characteristics == ["tissue", "os (months)", "grade"]


def test_empty_series_table(tmp_path):
    empty = MATRIX.split('"p1"')[0] + "!series_matrix_table_end\n"
    with pytest.raises(InputFormatError, match="expression table is empty"):
        geo.read_series_matrix(write(tmp_path, empty))


def test_truncated_series_matrix(tmp_path):
    with pytest.raises(InputFormatError, match="truncated"):
        geo.read_series_matrix(write(tmp_path, MATRIX.replace("!series_matrix_table_end\n", "")))


def test_non_numeric_value_named(tmp_path):
    with pytest.raises(InputFormatError, match="GSM2.*'x'.*p3"):
        geo.read_series_matrix(write(tmp_path, MATRIX.replace("\t8\t", "\tx\t")))


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "GSE1_series_matrix.txt.gz"
    path.write_bytes(gzip.compress(MATRIX.encode())[:60])
    with pytest.raises(InputFormatError, match="GSE1_series_matrix"):
        geo.read_series_matrix(path)


def test_series_stub():
    assert geo.series_stub("GSE14520") == "GSE14nnn"
    assert geo.series_stub("GSE1000") == "GSE1nnn"
    assert geo.series_stub("GSE999") == "GSEnnn"
    with pytest.raises(ConfigError):
        geo.series_stub("14520")


def test_real_gpl97_annotation(shared_reference):
    table = geo.read_platform_annotation(shared_reference / "geo/GPL97.annot.gz")
    assert len(table) == 22645
    row = table.set_index("probe_id").loc["200001_at"]
    assert row["symbols"] == ["CAPNS1"] and row["entrez"] == "826"
    n_symbols = table["symbols"].map(len)
    assert (n_symbols > 1).sum() == 754
    assert (n_symbols == 0).sum() == 9466


def test_collapse_probes_rules():
    table = pd.DataFrame(
        {"S1": [1.0, 5.0, 2.0, 9.0, 4.0], "S2": [3.0, 7.0, 2.0, 9.0, 6.0]}, index=["a1", "a2", "b1", "multi", "ctrl"]
    )
    annotation = pd.DataFrame(
        {
            "probe_id": ["a1", "a2", "b1", "multi", "ctrl"],
            "symbols": [["A"], ["A"], ["B"], ["A", "C"], []],
            "entrez": "",
        }
    )
    best, report = geo.collapse_probes(table, annotation, "max_mean", "drop")
    assert best.loc["A"].tolist() == [5.0, 7.0] and best.loc["B"].tolist() == [2.0, 2.0]
    assert "C" not in best.index
    assert (report.probes_unmapped, report.probes_multi_symbol, report.genes_out) == (1, 1, 2)
    mean, _ = geo.collapse_probes(table, annotation, "mean", "split")
    assert mean.loc["A"].tolist() == [5.0, 19 / 3]
    assert mean.loc["C"].tolist() == [9.0, 9.0]


# -- characteristics: keys matched ignoring case, repeated keys joined (issue 9 item 4) --------------------

MIXED_MATRIX = """!Series_geo_accession\t"GSE2"
!Series_platform_id\t"GPL1"
!Sample_title\t"a"\t"b"\t"c"
!Sample_geo_accession\t"GSM1"\t"GSM2"\t"GSM3"
!Sample_description\t"d1"\t"d2"\t"d3"
!Sample_characteristics_ch1\t"Tissue: Liver Tumor Tissue"\t"tissue: Liver Non-Tumor Tissue"\t"Tissue: Liver Tumor Tissue"
!Sample_characteristics_ch1\t"Individual: P1"\t"individual: P1"\t"INDIVIDUAL: P2"
!Sample_characteristics_ch1\t"treatment: sorafenib"\t"treatment: none"\t"description: x"
!Sample_characteristics_ch1\t"treatment: TACE"\t""\t"Description: y"
!Sample_characteristics_ch2\t"tissue: reference pool"\t"tissue: reference pool"\t"tissue: reference pool"
!series_matrix_table_begin
"ID_REF"\t"GSM1"\t"GSM2"\t"GSM3"
"1007_s_at"\t1\t2\t3
!series_matrix_table_end
"""


def test_characteristics_keys_ignore_case_and_repeated_keys_join(tmp_path):
    parsed = geo.read_series_matrix(write(tmp_path, MIXED_MATRIX, "GSE2_series_matrix.txt.gz"))
    samples = parsed.samples
    # one column per key whatever its case, named by the first spelling met; nothing half-empty
    assert samples["Tissue"].tolist() == ["Liver Tumor Tissue", "Liver Non-Tumor Tissue", "Liver Tumor Tissue"]
    assert samples["Individual"].tolist() == ["P1", "P1", "P2"]
    assert "tissue" not in samples.columns and "individual" not in samples.columns
    # a key given twice for one sample keeps both values (GEOquery joins them)
    assert samples["treatment"].fillna("").tolist() == ["sorafenib; TACE", "none", ""]
    assert samples.loc["GSM3", "description"] == "x; y"
    # the characteristic takes the plain name; the !Sample_description field keeps its GEO name
    assert samples["Sample_description"].tolist() == ["d1", "d2", "d3"]
    # channel 2 (the reference of a two-colour array) is its own column, not joined into channel 1
    assert samples["tissue:ch2"].unique().tolist() == ["reference pool"]
    report = parsed.characteristics_report
    assert report.key_spellings_merged == {
        "Tissue": ["Tissue", "tissue"],
        "Individual": ["Individual", "individual", "INDIVIDUAL"],
        "description": ["description", "Description"],
    }
    assert report.repeated_keys_joined == {"treatment": 1, "description": 1}
    assert report.sample_fields_renamed == {"description": "Sample_description"}
    assert any("'Tissue'" in note and "case-insensitively" in note for note in report.notes())


def test_probe_ids_match_the_platform_ignoring_case():
    table = pd.DataFrame({"S1": [1.0, 2.0, 3.0, 4.0]}, index=["1007_S_AT", "1053_at", "ambig", "absent"])
    annotation = pd.DataFrame(
        {
            "probe_id": ["1007_s_at", "1053_at", "AMBIG", "Ambig"],
            "symbols": [["DDR1"], ["RFC2"], ["X"], ["Y"]],
            "entrez": "",
        }
    )
    genes, report = geo.collapse_probes(table, annotation)
    assert genes["S1"].to_dict() == {"DDR1": 1.0, "RFC2": 2.0}
    assert report.probes_matched_ignoring_case == 1  # 1007_S_AT; "ambig" matches two platform ids: unmapped
    assert report.probes_unmapped == 2


# -- platform tables: .annot and SOFT records, streamed (issue 9 items 5 and 10) ----------------------------


def record_text(header, rows, declared=None, platform="GPL9"):
    lines = [
        f"^PLATFORM = {platform}",
        f"!Platform_geo_accession = {platform}",
        f"!Platform_data_row_count = {len(rows) if declared is None else declared}",
        "!platform_table_begin",
        "\t".join(header),
        *["\t".join(r) for r in rows],
        "!platform_table_end",
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "symbol, entrez",
    [
        ("Gene Symbol", "ENTREZ_GENE_ID"),
        ("GENE_SYMBOL", "GENE_ID"),
        ("Symbol", "Entrez Gene"),
        ("gene_symbol", "Gene ID"),
    ],
)
def test_soft_platform_table_spellings(tmp_path, symbol, entrez):
    path = tmp_path / "GPL9.soft"
    path.write_text(
        record_text(
            ["ID", "SEQUENCE", symbol, entrez],
            [
                ["p1", "ACGT", "GPX4", "2879"],
                ["p2", "ACGT", "SNX3 /// NR2E1", "8724 /// 7101"],
                ["p3", "ACGT", "---", ""],
            ],
        )
    )
    table = geo.read_platform_annotation(path, "GPL9")
    assert table["symbols"].tolist() == [["GPX4"], ["SNX3", "NR2E1"], []]
    assert table["entrez"].tolist() == ["2879", "8724 /// 7101", ""]


def test_platform_without_symbol_column_names_platform_and_columns(tmp_path):
    path = tmp_path / "GPL9.soft"
    path.write_text(record_text(["ID", "SEQUENCE", "SPOT_ID"], [["p1", "ACGT", "x"]]))
    with pytest.raises(
        InputFormatError, match=r"GPL9.*no recognisable gene symbol column.*'ID', 'SEQUENCE', 'SPOT_ID'"
    ):
        geo.read_platform_annotation(path, "GPL9")


def test_incomplete_platform_record_is_an_error(tmp_path):
    path = tmp_path / "GPL9.soft"
    rows = [["p1", "GPX4"], ["p2", "ACSL4"]]
    path.write_text(record_text(["ID", "Gene Symbol"], rows, declared=3))
    with pytest.raises(InputFormatError, match=r"GPL9 declares 3 rows.*has 2"):
        geo.read_platform_annotation(path, "GPL9")
    path.write_text(record_text(["ID", "Gene Symbol"], rows).replace("!platform_table_end\n", ""))
    with pytest.raises(InputFormatError, match=r"GPL9.soft: no !platform_table_end.*truncated"):
        geo.verify_platform_record(path, "GPL9")
    path.write_text(record_text(["ID", "Gene Symbol"], rows, platform="GPL8"))
    with pytest.raises(InputFormatError, match="platform GPL8, expected GPL9"):
        geo.verify_platform_record(path, "GPL9")


class CountingLines:
    """An iterator over lines that remembers how many were read."""

    def __init__(self, lines):
        self.lines, self.read = lines, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.read >= len(self.lines):
            raise StopIteration
        self.read += 1
        return self.lines[self.read - 1]


@pytest.mark.shared
def test_real_gpl20814_family_soft_excerpt(shared_reference):
    path = shared_reference / "real_formats/geo/GPL20814_family.soft.GEOparse-test-excerpt.txt"
    lines = path.read_text().splitlines(keepends=True)
    begin = lines.index("!platform_table_begin\n")
    series_line = next(i for i, line in enumerate(lines) if line.startswith("^SERIES"))
    # GEOparse trimmed the middle of the family file: the platform table runs straight into the last row of a
    # sample table and its !sample_table_end. Streaming stops right there, an incomplete record, never reading on.
    counted = CountingLines(lines)
    table = geo.iter_platform_table(counted, path.name)
    assert table.platform == "GPL20814" and table.declared_rows == 2088
    assert table.header == ["ID", "Reporter Name", "miRNA_ID", "SPOT_ID"]
    rows = []
    with pytest.raises(InputFormatError, match=r"line 42 with '!sample_table_end'.*not !platform_table_end"):
        for row in table.rows:
            rows.append(row)
    assert [r[:3] for r in rows[:2]] == [
        ["272", "hsa-miR-99b-5p", "MIMAT0000689"],
        ["271", "hsa-miR-99b-3p", "MIMAT0004678"],
    ]
    assert counted.read == series_line == 42  # the lines before ^SERIES, not one more
    # with the platform table closed where GEO closes it, reading ends at !platform_table_end: the sample
    # tables and the ^SERIES record that follow are never read
    closed = lines[: begin + 4] + ["!platform_table_end\n"] + lines[begin + 4 :]
    counted = CountingLines(closed)
    table = geo.iter_platform_table(counted, path.name)
    assert [r[0] for r in table.rows] == ["272", "271"]
    assert counted.read == begin + 5
    # the whole record through the reader: a miRNA platform has no gene symbols, a clear error naming it
    with pytest.raises(
        InputFormatError,
        match=r"platform GPL20814 has no recognisable gene symbol column.*"
        r"'ID', 'Reporter Name', 'miRNA_ID', 'SPOT_ID'",
    ):
        geo.read_platform_annotation(path, "GPL20814")


@pytest.mark.shared
def test_real_gpl97_annot_head(shared_reference):
    path = shared_reference / "real_formats/geo/GPL97.annot.head30.cols1-4.tsv"
    table = geo.iter_platform_table(iter(path.read_text().splitlines(keepends=True)), path.name)
    assert table.platform == "GPL97" and table.declared_rows is None
    assert table.header == ["ID", "Gene title", "Gene symbol", "Gene ID"]
    rows = []
    with pytest.raises(InputFormatError, match="no !platform_table_end line; the download is truncated"):
        for row in table.rows:
            rows.append(row)
    assert [(r[0], r[2], r[3]) for r in rows] == [("200000_s_at", "PRPF8", "10594"), ("200001_at", "CAPNS1", "826")]
    with pytest.raises(InputFormatError, match="truncated"):  # a head is not a complete annotation
        geo.read_platform_annotation(path)


@pytest.mark.shared
def test_real_gpl97_annot_multi_symbol_rows(shared_reference):
    table = geo.read_platform_annotation(shared_reference / "geo/GPL97.annot.gz", "GPL97").set_index("probe_id")
    assert table.loc["200067_x_at", "symbols"] == ["SNX3", "NR2E1"]
    assert table.loc["200089_s_at", "symbols"] == ["SNORD16", "RPL4", "EPB49"]
    assert table.loc["200089_s_at", "entrez"] == "595097///6124///2039"
    assert table.loc["200088_x_at", "symbols"] == []


# -- declared scale against the data (issue 10 item 2; log-ratios, issue 11 item 6) -------------------------


def geo_raw(tmp_path, values: np.ndarray, accession="GSE7", platform="GPL7"):
    """A raw GEO folder: a series matrix of `values` (probes x samples) and its platform's .annot."""
    samples = [f"GSM{i + 1}" for i in range(values.shape[1])]
    probes = [f"p{i}" for i in range(values.shape[0])]
    lines = [
        f'!Series_geo_accession\t"{accession}"',
        f'!Series_platform_id\t"{platform}"',
        "!Sample_geo_accession\t" + "\t".join(f'"{s}"' for s in samples),
        "!Sample_characteristics_ch1\t"
        + "\t".join(f'"tissue: {"tumor" if i % 2 else "normal"}"' for i in range(len(samples))),
        "!series_matrix_table_begin",
        "\t".join(['"ID_REF"'] + [f'"{s}"' for s in samples]),
    ]
    lines += ["\t".join([f'"{p}"'] + [f"{v:.6g}" for v in row]) for p, row in zip(probes, values)]
    write(tmp_path, "\n".join(lines + ["!series_matrix_table_end"]) + "\n", f"{accession}_series_matrix.txt.gz")
    annot = ["^Annotation", f"!Annotation_platform = {platform}", "!platform_table_begin", "ID\tGene symbol\tGene ID"]
    annot += [f"{p}\tG{i}\t{i}" for i, p in enumerate(probes)] + ["!platform_table_end"]
    write(tmp_path, "\n".join(annot) + "\n", f"{platform}.annot.gz")
    return tmp_path


def load(raw, **settings):
    from ferrostem.cohort import HarmonisationRules
    from ferrostem.harmonise import load_geo_cohort

    mapping = {"fields": {"tissue": "tissue"}, **settings}
    return load_geo_cohort(raw, "GSE7", mapping, HarmonisationRules(), label="test cohort")


LOG2_VALUES = np.random.default_rng(5).normal(8, 1.5, size=(50, 6))


def test_log2_data_declared_linear_is_an_error(tmp_path):
    raw = geo_raw(tmp_path, LOG2_VALUES)
    with pytest.raises(
        ConfigError,
        match=r"cohort GSE7 \(test cohort\): geo.scale is declared 'linear' but the "
        r"values look log2.*log them twice.*trust_declared_scale",
    ):
        load(raw, scale="linear")


def test_linear_data_declared_log2_is_an_error(tmp_path):
    raw = geo_raw(tmp_path, 2.0**LOG2_VALUES)
    with pytest.raises(
        ConfigError,
        match=r"cohort GSE7 \(test cohort\): geo.scale is declared 'log2' but the "
        r"values look linear",
    ):
        load(raw, scale="log2")


def test_agreeing_declaration_and_trusted_override(tmp_path):
    raw = geo_raw(tmp_path, LOG2_VALUES)
    agreed = load(raw, scale="log2")
    assert agreed.uns["harmonisation"]["log_transformed"] in (False, 0)
    assert agreed.uns["harmonisation"]["detected_scale"] == "log2"
    assert np.allclose(agreed[:, "G3"].X.ravel(), LOG2_VALUES[3], atol=1e-4)
    trusted = load(raw, scale="linear", trust_declared_scale=True)
    record = trusted.uns["harmonisation"]
    assert record["log_transformed"] in (True, 1) and record["detected_scale"] == "log2"
    assert "CONTRADICTS" in record["scale_rule"] and any("trust_declared_scale" in w for w in record["warnings"])
    assert np.allclose(trusted[:, "G3"].X.ravel(), np.log2(LOG2_VALUES[3] + 1), atol=1e-4)


def test_centred_log_ratios_are_log_scale(tmp_path):
    ratios = np.random.default_rng(6).normal(0, 1.2, size=(50, 6))
    adata = load(geo_raw(tmp_path, ratios))
    record = adata.uns["harmonisation"]
    assert record["detected_scale"] == "log2 ratio" and record["log_transformed"] in (False, 0)
    assert np.allclose(adata[:, "G3"].X.ravel(), ratios[3], atol=1e-4)  # not logged, not clipped
    assert (adata.layers["tpm"] > 0).all()  # the linear layer holds ratios (2**x), never a negative "intensity"
    assert "ratio" in adata.uns["layer_scales"]["log2"]
    assert any("log2 ratios" in w for w in record["warnings"])
    with pytest.raises(ConfigError, match="declared 'linear' but the values look log2 ratio"):
        load(geo_raw(tmp_path, ratios), scale="linear")


def test_characteristics_line_of_the_wrong_width_is_named(tmp_path):
    text = MATRIX.replace('"grade: G1"\t"grade: G2"\t"grade: G3"', '"grade: G1"\t"grade: G2"\t"grade: G3"\t"grade: G4"')
    with pytest.raises(InputFormatError, match=r"!Sample_characteristics_ch1 line 3 has 4 cells for 3 samples"):
        geo.read_series_matrix(write(tmp_path, text))


# -- sample tables outside the series matrix (issue 11 item 3) ---------------------------------------------

SUPPLEMENT = (
    "Affy_GSM\tTissue Type\tSurvival status\tSurvival months\tRecurr status\tRecurr months\tAge\tGender\n"
    "GSM1\tTumor\t1\t10.4\t1\t10.4\t55\tM\n"
    "GSM3 \tTumor\tNA\t\t0\t60.8\t61\tF\n"
    "GSM9\tTumor\t0\t58.0\t0\t58.0\t40\tM\n"
)


def test_sample_table_read_and_joined(tmp_path):
    path = write(tmp_path, SUPPLEMENT, "GSE1_Extra_Supplement.txt.gz")
    table = geo.read_sample_table(path, "affy_gsm")
    assert list(table.index) == ["GSM1", "GSM3", "GSM9"] and table.index.name == "Affy_GSM"
    assert table["Survival months"].dtype.kind == "f" and np.isnan(table.loc["GSM3", "Survival months"])
    assert np.isnan(table.loc["GSM3", "Survival status"])
    samples = geo.read_series_matrix(write(tmp_path, MATRIX)).samples
    joined, record = geo.join_sample_table(samples, table, str(path))
    assert joined.loc["GSM1", "Survival months"] == 10.4 and joined.loc["GSM1", "tissue"] == "tumor"
    assert np.isnan(joined.loc["GSM2", "Survival months"])
    assert record["samples_matched"] == 2
    assert record["samples_without_row"] == ["GSM2"] and record["rows_without_sample"] == ["GSM9"]
    notes = geo.sample_table_notes(record)
    assert any("1 samples of the series have no row" in n and "GSM2" in n for n in notes)
    assert any("1 rows are not samples of this series" in n and "GSM9" in n for n in notes)


def test_sample_table_errors_name_file_and_column(tmp_path):
    path = write(tmp_path, SUPPLEMENT, "S.txt.gz")
    with pytest.raises(
        InputFormatError, match=r"S.txt.gz: the sample table has no key column 'GSM'.*'Affy_GSM', 'Tissue Type'"
    ):
        geo.read_sample_table(path, "GSM")
    twice = write(tmp_path, SUPPLEMENT + "GSM1\tTumor\t0\t1\t0\t1\t50\tF\n", "twice.txt.gz")
    with pytest.raises(InputFormatError, match=r"twice.txt.gz: key column 'Affy_GSM' repeats 1 id\(s\): \['GSM1'\]"):
        geo.read_sample_table(twice, "Affy_GSM")
    keyless = write(tmp_path, SUPPLEMENT + "\tTumor\t0\t1\t0\t1\t50\tF\n", "keyless.txt.gz")
    with pytest.raises(InputFormatError, match=r"keyless.txt.gz: rows \[5\] have no 'Affy_GSM' value"):
        geo.read_sample_table(keyless, "Affy_GSM")
    other = geo.read_sample_table(write(tmp_path, SUPPLEMENT.replace("GSM", "XX"), "other.txt.gz"), "Affy_XX")
    samples = geo.read_series_matrix(write(tmp_path, MATRIX)).samples
    with pytest.raises(CohortError, match=r"other.txt.gz: no 'Affy_XX' value is a sample of the series"):
        geo.join_sample_table(samples, other, str(tmp_path / "other.txt.gz"))


def test_numeric_status_with_missing_cells_counts_events():
    from ferrostem.harmonise import geo_obs

    samples = pd.DataFrame({"status": [1.0, 0.0, np.nan], "months": [10.0, 20.0, 30.0]}, index=["GSM1", "GSM2", "GSM3"])
    obs = geo_obs(
        samples, {"fields": {"OS": "Status", "OS.time": "months"}, "event_values": ["1"], "time_unit": "months"}, "x"
    )
    assert obs["OS"].tolist()[:2] == [1.0, 0.0] and np.isnan(obs["OS"].iloc[2])


@pytest.mark.shared
def test_real_gse14520_supplement_through_the_sample_table_reader(shared_reference, tmp_path):
    """The real GSE14520_Extra_Supplement values, laid out as the file is (tab-separated, the header with
    spaces; the excerpt is R's print with row numbers and R's dotted names), through read_sample_table."""
    path = shared_reference / "real_formats/geo/GSE14520_Extra_Supplement.head6.Rprint.txt"
    lines = [line[2:].split() for line in path.read_text().splitlines() if line.startswith("# ")]
    header_at = next(i for i, cells in enumerate(lines) if cells[:1] == ["Affy_GSM"])
    header = [name.replace(".", " ") for name in lines[header_at]]
    rows = [cells[1:] for cells in lines[header_at + 1 :]]  # drop R's row numbers
    table_file = write(
        tmp_path, "\n".join("\t".join(r) for r in [header, *rows]) + "\n", "GSE14520_Extra_Supplement.txt.gz"
    )
    table = geo.read_sample_table(table_file, "Affy_GSM")
    assert list(table.columns) == ["Survival status", "Survival months", "Recurr status", "Recurr months"]
    assert list(table.index) == ["GSM363205", "GSM363115", "GSM362970", "GSM363354", "GSM363039", "GSM363209"]
    assert table["Survival status"].tolist() == [0, 0, 0, 1, 0, 0]
    assert table.loc["GSM363354", "Survival months"] == 10.4 and table.loc["GSM363205", "Recurr months"] == 58.0
    from ferrostem.harmonise import geo_obs

    samples = pd.DataFrame({"Tissue": ["Liver Tumor Tissue"] * 6}, index=list(table.index))
    joined, _ = geo.join_sample_table(samples, table, str(table_file))
    obs = geo_obs(
        joined,
        {
            "fields": {"OS": "survival status", "OS.time": "Survival months"},
            "event_values": ["1"],
            "time_unit": "months",
        },
        table_file,
    )
    assert obs.loc["GSM363354", "OS"] == 1 and obs["OS"].sum() == 1
    assert obs.loc["GSM363354", "OS.time"] == pytest.approx(10.4 * 365.25 / 12)


def test_ncbi_counts_links_prefer_ncbi_generated_files():
    base = "http://mirror.example/geo/download/"
    links = [
        "/geo/download/?acc=GSE5&format=file&file=GSE5_raw_counts_by_author.txt.gz",  # a supplement
        "/geo/download/?type=rnaseq_counts&acc=GSE5&format=file&file=GSE5_raw_counts_GRCh38.p13_NCBI.tsv.gz",
        "/geo/download/?type=rnaseq_counts&acc=GSE5&format=file&file=GSE5_norm_counts_TPM_GRCh38.p13_NCBI.tsv.gz",
        "/geo/download/?format=file&type=rnaseq_counts&file=Human.GRCh38.p13.annot.tsv.gz",
    ]
    found = geo.ncbi_counts_links(links, "GSE5", "page", base)
    assert (
        found.counts_url
        == base + "?type=rnaseq_counts&acc=GSE5&format=file&file=GSE5_raw_counts_GRCh38.p13_NCBI.tsv.gz"
    )
    assert found.annotation_url == base + "?format=file&type=rnaseq_counts&file=Human.GRCh38.p13.annot.tsv.gz"
    assert (found.species, found.build) == ("Human", "GRCh38.p13")
    with pytest.raises(InputFormatError, match="different genome builds"):
        geo.ncbi_counts_links([links[1], links[3].replace("GRCh38.p13", "GRCh38.p14")], "GSE5", "page", base)
