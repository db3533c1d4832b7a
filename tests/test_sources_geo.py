import gzip

import numpy as np
import pandas as pd
import pytest

from ferrostem.errors import ConfigError, InputFormatError
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
    table = pd.DataFrame({"S1": [1.0, 5.0, 2.0, 9.0, 4.0], "S2": [3.0, 7.0, 2.0, 9.0, 6.0]},
                         index=["a1", "a2", "b1", "multi", "ctrl"])
    annotation = pd.DataFrame({"probe_id": ["a1", "a2", "b1", "multi", "ctrl"],
                               "symbols": [["A"], ["A"], ["B"], ["A", "C"], []], "entrez": ""})
    best, report = geo.collapse_probes(table, annotation, "max_mean", "drop")
    assert best.loc["A"].tolist() == [5.0, 7.0] and best.loc["B"].tolist() == [2.0, 2.0]
    assert "C" not in best.index
    assert (report.probes_unmapped, report.probes_multi_symbol, report.genes_out) == (1, 1, 2)
    mean, _ = geo.collapse_probes(table, annotation, "mean", "split")
    assert mean.loc["A"].tolist() == [5.0, 19 / 3]
    assert mean.loc["C"].tolist() == [9.0, 9.0]
