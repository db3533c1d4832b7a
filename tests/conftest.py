"""Shared fixtures: the ../shared reference files, the simulated demo, and one end-to-end workflow run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FERROSTEM_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    """../shared/reference (real public files); every test that reads it goes through here."""
    folder = SHARED / "reference"
    if not folder.is_dir():
        pytest.skip(
            f"reference files not found at {folder}: clone the project with ../shared beside it or set FERROSTEM_SHARED"
        )
    return folder


DEMO_COHORTS = {
    "gdc": {"source": "gdc", "project": "TCGA-DEMO", "simulated": True},
    "geo": {"source": "geo", "accession": "GSE0000", "simulated": True},
}


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated demo, written once per test session: mirror/ and truth/ as the generator writes them,
    plus gdc/ and geo/, the raw layouts the download clients make from that mirror."""
    from ferrostem.demo import write_demo
    from ferrostem.download import download_cohort, settings

    out = tmp_path_factory.mktemp("demo")
    write_demo(out)
    download = settings({"mirror": str(out / "mirror"), "download": {"store": str(out / "store")}})
    for folder, cohort in DEMO_COHORTS.items():
        download_cohort(cohort, download, out / folder)
    return out


DEMO_GEO_MAPPING = {
    "time_unit": "months",
    "fields": {
        "patient_id": "patient",
        "tissue": "tissue",
        "age": "age",
        "sex": "gender",
        "stage": "tnm stage",
        "OS.time": "survival months",
        "OS": "survival status",
    },
    "tumor_values": ["tumor"],
    "normal_values": ["non-tumor"],
    "event_values": ["1"],
}


@pytest.fixture(scope="session")
def demo_rnaseq(demo_dir: Path):
    from ferrostem.harmonise import harmonise_cohort

    return harmonise_cohort({"source": "gdc", "project": "TCGA-DEMO", "simulated": True}, demo_dir / "gdc")


@pytest.fixture(scope="session")
def demo_array(demo_dir: Path):
    from ferrostem.harmonise import harmonise_cohort

    return harmonise_cohort(
        {"source": "geo", "accession": "GSE0000", "simulated": True, "geo": DEMO_GEO_MAPPING}, demo_dir / "geo"
    )


def run_snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the repository's workflow with `workdir` as working directory (results land there)."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        "--profile",
        str(REPO / "profiles" / "default"),
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result


@pytest.fixture(scope="session")
def workflow_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workflow run once, end to end, into a temporary directory; returns that directory."""
    workdir = tmp_path_factory.mktemp("workflow")
    shutil.copytree(REPO / "config", workdir / "config")
    run_snakemake(workdir, "--configfile", str(workdir / "config" / "config.yaml"))
    return workdir
