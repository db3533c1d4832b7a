"""Progress lines of long non-download work: done of total, rate and ETA at intervals, read on a fake clock."""

from __future__ import annotations

import io
import logging

import pytest

from ferrostem.progress import ProgressReport, rate_text


def test_a_long_job_reports_done_of_total_rate_and_eta_at_intervals():
    now = [0.0]
    terminal = io.StringIO()
    report = ProgressReport(
        "DESeq2 GLM fit", 20000, unit="genes", interval=15, always=False, clock=lambda: now[0], terminal=terminal
    )
    now[0] = 10.0
    report.add(2000)
    assert report.lines == [], "nothing before the interval"
    now[0] = 20.0
    report.add(2000)
    assert report.lines == ["DESeq2 GLM fit: 4000/20000 genes (20%), 200 genes/s, ETA 80 s"]
    now[0] = 25.0
    report.add(1000)
    assert len(report.lines) == 1, "the next line waits a whole interval"
    now[0] = 100.0
    report.add(15000)
    report.close()
    assert report.lines[-1] == "DESeq2 GLM fit: 20000/20000 genes (100%), 200 genes/s, done in 2 min"
    assert terminal.getvalue().splitlines() == [f"[ferrostem] {line}" for line in report.lines]


def test_quick_work_stays_silent_and_slow_items_are_counted_per_minute():
    quiet = ProgressReport("scoring", 63, unit="signatures", always=False, clock=lambda: 0.0, terminal=io.StringIO())
    quiet.add(63)
    quiet.close()
    assert quiet.lines == []
    now = [0.0]
    folds = ProgressReport("LASSO-Cox CV", 10, unit="folds", interval=60, clock=lambda: now[0], terminal=io.StringIO())
    assert folds.lines == ["LASSO-Cox CV: starting, 10 folds"]
    now[0] = 120.0
    folds.add()
    assert folds.lines[-1] == "LASSO-Cox CV: 1/10 folds (10%), 0.5 folds/min, ETA 18 min"
    assert rate_text(12.4, "files") == "12 files/s" and rate_text(2.26, "files") == "2.3 files/s"


def test_lines_go_to_the_callers_logger_and_a_failed_step_writes_no_done_line(caplog):
    now = [0.0]
    with caplog.at_level(logging.INFO, logger="ferrostem"):
        with (
            pytest.raises(RuntimeError),
            ProgressReport(
                "merge",
                4,
                clock=lambda: now[0],
                terminal=io.StringIO(),
                logger=logging.getLogger("ferrostem.sources.gdc"),
            ) as report,
        ):
            now[0] = 20.0
            report.add()
            raise RuntimeError("file 2 is broken")
    assert [r.name for r in caplog.records] == ["ferrostem.sources.gdc"] * 2
    assert not any("done in" in line for line in report.lines)


def test_long_steps_report_their_progress(tmp_path, monkeypatch, caplog):
    """The STAR merge (per file) and the DESeq2 gene blocks (per gene) write lines, here at every step."""
    from test_sources_gdc import GENES
    from test_star_merge import star

    from ferrostem import progress
    from ferrostem.deseq2_batched import _map_blocks
    from ferrostem.sources import gdc

    monkeypatch.setattr(progress, "DEFAULT_INTERVAL", 0.0)
    paths = [star(tmp_path, f"{i}.tsv", GENES) for i in range(3)]
    with caplog.at_level(logging.INFO, logger="ferrostem"):
        gdc.merge_star_files(paths, ["S1", "S2", "S3"])
        blocks = [slice(0, 100), slice(100, 250)]
        assert _map_blocks(lambda block: block.start, blocks, 2, "DESeq2 GLM fit") == [0, 100]
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(",")[0] for line in lines if line.startswith("STAR merge")] == [
        "STAR merge: 1/3 files (33%)",
        "STAR merge: 2/3 files (67%)",
        "STAR merge: 3/3 files (100%)",
        "STAR merge: 3/3 files (100%)",
    ]
    assert "done in" in [line for line in lines if line.startswith("STAR merge")][-1]
    assert [line.split(",")[0] for line in lines if line.startswith("DESeq2")][:2] == [
        "DESeq2 GLM fit: 100/250 genes (40%)",
        "DESeq2 GLM fit: 250/250 genes (100%)",
    ]
