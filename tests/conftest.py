"""Shared fixtures: the ../shared reference files, the simulated demo, and one end-to-end workflow run.

The suite runs in parallel with pytest-xdist (`make test`: `-n 2 --dist loadscope`): the tests of one module run on
one worker, so a module fixture is computed once; the session fixtures `demo_dir` and `workflow_run` are built
once per run into a folder every worker shares (`build_once`)."""

from __future__ import annotations

import fcntl
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


# Under xdist (`--dist loadscope`: a module's tests run on one worker), modules start in this order, longest
# first, so that no long module is left to run alone at the end; the rest follow in collection order.
# test_workflow.py builds `workflow_run` while test_slurm.py runs its cluster (it reads `workflow_run` last).
LONG_MODULES = (
    "test_workflow.py",
    "test_slurm.py",
    "test_replica_e2e.py",
    "test_pancancer.py",
    "test_download_resources.py",
    "test_report_browser.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_MODULES.index(name) if name in LONG_MODULES else len(LONG_MODULES)

    items.sort(key=rank)  # stable, and every worker sorts its identical collection alike


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build) -> Path:
    """A folder that `build(folder)` writes once per test run. Under pytest-xdist every worker gets the same
    folder: the first one builds it under a lock, the others wait for it. Tests only read it."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        out = tmp_path_factory.mktemp(name)
        build(out)
        return out
    root = tmp_path_factory.getbasetemp().parent  # shared by the workers of this run
    out, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)  # a worker that died half-way
            out.mkdir()
            build(out)
            done.touch()
    return out


def write_demo_dir(out: Path) -> None:
    from ferrostem.demo import write_demo
    from ferrostem.download import download_cohort, settings

    write_demo(out)
    download = settings({"mirror": str(out / "mirror"), "download": {"store": str(out / "store")}})
    for folder, cohort in DEMO_COHORTS.items():
        download_cohort(cohort, download, out / folder)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated demo, written once per test run: mirror/ and truth/ as the generator writes them,
    plus gdc/ and geo/, the raw layouts the download clients make from that mirror. Read only."""
    return build_once(tmp_path_factory, "demo", write_demo_dir)


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
    """The demo workflow run once per test run, end to end, into a temporary directory; returns that directory.
    Tests read it (and may add files beside the reports) but never rerun or change its jobs."""
    return build_once(tmp_path_factory, "workflow", run_demo_workflow)


def run_demo_workflow(workdir: Path) -> None:
    shutil.copytree(REPO / "config", workdir / "config")
    run_snakemake(workdir, "--configfile", str(workdir / "config" / "config.yaml"))
