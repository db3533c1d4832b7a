"""Merging per-sample STAR files: the odd file is named, not its correct neighbours."""

import pytest

from ferrostem.errors import InputFormatError
from ferrostem.sources import gdc

from test_sources_gdc import GENES, HEADER, SUMMARY

EXTRA = "ENSG00000000419.13\tDPM1\tprotein_coding\t1083\t540\t543\t56.2676\t21.2\t30.0\n"


def star(folder, name, body, model="GENCODE v36"):
    path = folder / name
    path.write_text(HEADER.replace("GENCODE v36", model) + SUMMARY + body)
    return path


@pytest.mark.parametrize("odd_position", [0, 1, 2])
def test_other_gene_model_names_the_odd_file_and_the_majority_model(tmp_path, odd_position):
    names = ["a.tsv", "b.tsv", "c.tsv"]
    paths = [
        star(
            tmp_path,
            name,
            GENES + (EXTRA if i == odd_position else ""),
            "GENCODE v22" if i == odd_position else "GENCODE v36",
        )
        for i, name in enumerate(names)
    ]
    with pytest.raises(InputFormatError) as error:
        gdc.merge_star_files(paths, ["S1", "S2", "S3"])
    message = str(error.value)
    assert (
        f"1 of 3 STAR files name another gene model than the 'GENCODE v36' of 2 files: {paths[odd_position]} ('GENCODE v22')"  # noqa: E501 (a message or record quoted whole)
        in message
    )
    assert all(str(p) not in message for i, p in enumerate(paths) if i != odd_position)


def test_missing_and_repeated_gene_rows_are_named(tmp_path):
    a = star(tmp_path, "a.tsv", GENES + EXTRA)
    b = star(tmp_path, "b.tsv", GENES)
    with pytest.raises(
        InputFormatError,
        match=r"b\.tsv: gene rows differ from .*a\.tsv \(2 vs 3 genes: missing \['ENSG00000000419\.13'\]\)",
    ):
        gdc.merge_star_files([a, b], ["S1", "S2"])
    twice = star(tmp_path, "twice.tsv", GENES + GENES.splitlines(keepends=True)[0])
    with pytest.raises(
        InputFormatError, match=r"twice\.tsv: gene rows listed more than once: \['ENSG00000000003\.15'\]"
    ):
        gdc.merge_star_files([twice, a], ["S1", "S2"])
    with pytest.raises(InputFormatError, match=r"listed twice \['ENSG00000000003\.15'\]"):
        gdc.merge_star_files(
            [a, star(tmp_path, "c.tsv", GENES + EXTRA + GENES.splitlines(keepends=True)[0])], ["S1", "S2"]
        )


def test_reading_on_threads_fills_the_same_matrices_and_names_the_same_bad_file(tmp_path):
    """merge_star_files(workers=2) reads the files on two threads; the matrices are filled in file order all the
    same, and a file the fast reader refuses still goes to the full reader, whose error names it."""
    counts = [3231 + i for i in range(9)]
    paths = [
        star(tmp_path, f"s{i}.tsv", GENES.replace("\t3231\t", f"\t{count}\t") + EXTRA) for i, count in enumerate(counts)
    ]
    serial = gdc.merge_star_files(paths, [f"S{i}" for i in range(9)])
    threaded = gdc.merge_star_files(paths, [f"S{i}" for i in range(9)], workers=2)
    assert serial.counts[0].tolist() == counts
    for name in ("counts", "tpm"):
        assert (getattr(threaded, name) == getattr(serial, name)).all()
    assert threaded.unassigned.equals(serial.unassigned) and threaded.genes.equals(serial.genes)
    bad = star(tmp_path, "bad.tsv", GENES.replace("\t3231\t", "\tx\t") + EXTRA)
    for workers in (1, 2):
        with pytest.raises(InputFormatError, match=r"bad\.tsv: column 'unstranded' has a non-numeric value 'x'"):
            gdc.merge_star_files([*paths[:5], bad, *paths[5:]], [f"S{i}" for i in range(10)], workers=workers)
