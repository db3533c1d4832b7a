"""Locked resources (fetched and verified), and the workflow run from mirrors: resources built from
../shared/reference laid out like their canonical URLs, and an interrupted download resumed."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import pandas as pd
import yaml
from conftest import REPO, run_snakemake
from download_server import LoopbackServer
from test_download_http import quick_client

from ferrostem.resources import (
    ResourceChecksumError,
    ResourcePlan,
    ensure_cached,
    fetch_resource,
    get_resource,
    load_lock,
    verified_resource_files,
    verify_job_resources,
)
from ferrostem.errors import ConfigError

SHARED_FILES = {  # resource id -> file in ../shared/reference (the byte copies the lock pins)
    "msigdb_hallmark_v7_0": "genesets/h.all.v7.0.symbols.gmt",
    "msigdb_c2_v7_1": "genesets/c2.all.v7.1.symbols.gmt",
    "wikipathways_wp4313": "genesets/WP4313-datanodes.tsv",
    "ferrdb_v2_driver": "ferrdb_v2/driver.csv",
    "ferrdb_v2_suppressor": "ferrdb_v2/suppressor.csv",
    "ferrdb_v2_marker": "ferrdb_v2/marker.csv",
    "pcbc_stemsig": "stemness/SC_PCBC_stemSig.rda",
    "mcpcounter_genes": "immune/MCPcounter_genes.txt",
    "charoentong_28": "immune/Charoentong2017_tableS6_Immune.txt",
}


def resource_mirror(shared: Path, mirror: Path) -> Path:
    """Symlinks to ../shared/reference at the mirror paths of the lock's URLs (nothing is copied)."""
    for resource_id, relative in SHARED_FILES.items():
        url = urllib.parse.urlsplit(get_resource(resource_id).url)
        target = mirror / url.hostname / url.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(shared / relative)
    return mirror


def test_every_downloadable_resource_is_pinned():
    lock = load_lock()
    assert set(SHARED_FILES) == {i for i, r in lock.items() if not r.restricted}
    assert {"cibersort_lm22", "kegg_hsa04216"} <= {i for i, r in lock.items() if r.restricted}


def _sources_row(sources: str, filename: str) -> str:
    """The row of ../shared/reference/SOURCES.md whose first cell names `filename`."""
    for line in sources.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and filename in [n.strip() for n in cells[0].split(",")]:
            return line
    raise AssertionError(f"SOURCES.md has no row for {filename}")


def test_every_lock_url_serves_the_pinned_bytes(shared_reference: Path):
    """Each entry's url is the commit-pinned copy that SOURCES.md says the shared bytes were taken from, the
    pinned sha256/size are those bytes, and a canonical URL named there is the url itself or the upstream."""
    sources = (shared_reference / "SOURCES.md").read_text()
    for resource_id, relative in SHARED_FILES.items():
        resource = get_resource(resource_id)
        data = (shared_reference / relative).read_bytes()
        assert hashlib.sha256(data).hexdigest() == resource.sha256 and len(data) == resource.size, resource_id
        row = _sources_row(sources, Path(relative).name)
        match = re.fullmatch(r"https://raw\.githubusercontent\.com/([^/]+/[^/]+)/([0-9a-f]{40})/(.+)", resource.url)
        assert match, f"{resource_id}: url {resource.url} is not a commit-pinned copy"
        repo, commit, path = match.groups()
        assert f"`{repo}`" in row, f"{resource_id}: SOURCES.md names another origin than {repo}: {row}"
        assert any(commit.startswith(token) for token in re.findall(r"\b[0-9a-f]{8,40}\b", row)), (
            f"{resource_id}: commit {commit} is not the one SOURCES.md names: {row}"
        )
        assert path in row or path.replace(resource.filename, "<file>") in row, f"{resource_id}: {path} vs {row}"
        for url in re.findall(r"`(https?://[^`\s]+)`", row):  # a canonical URL SOURCES.md names
            assert url in (resource.url, resource.upstream), f"{resource_id}: neither url nor upstream is {url}"
        if resource.upstream:
            assert resource.upstream != resource.url and resource.upstream.startswith(("https://", "http://"))
    assert (
        get_resource("msigdb_c2_v7_1").upstream
        == "https://data.broadinstitute.org/gsea-msigdb/msigdb/release/7.1/c2.all.v7.1.symbols.gmt"
    )


def test_lock_rejects_an_upstream_that_is_not_a_url(tmp_path: Path):
    lock = yaml.safe_load((REPO / "resources" / "lock.yaml").read_text())
    lock["resources"]["mcpcounter_genes"]["upstream"] = "the MCPcounter repository (copy)"
    (tmp_path / "lock.yaml").write_text(yaml.safe_dump(lock))
    with pytest.raises(ConfigError, match=r"mcpcounter_genes.*upstream must be an http\(s\) URL.*note"):
        load_lock(tmp_path / "lock.yaml")


def test_edited_cached_resource_is_fetched_again_or_refused(shared_reference: Path, tmp_path: Path):
    mirror = resource_mirror(shared_reference, tmp_path / "mirror")
    client = quick_client(tmp_path / "store", mirror=str(mirror))
    resource = get_resource("mcpcounter_genes")
    cached = resource.cache_path(tmp_path)
    fetch_resource(resource, cached, client)
    pinned = cached.read_bytes()
    cached.write_bytes(pinned.replace(b"CD8B", b"CD8X"))  # same size, other bytes: edited in place
    verified_resource_files({"immune": [str(cached)]}, client)
    assert cached.read_bytes() == pinned
    with open(cached, "ab") as handle:
        handle.write(b"EXTRA\tgene\n")
    edited = hashlib.sha256(cached.read_bytes()).hexdigest()
    with pytest.raises(ResourceChecksumError) as error:  # no way to fetch: the run stops, naming what to do
        ensure_cached(resource, cached, client=None)
    message = str(error.value)
    assert str(cached) in message and resource.sha256 in message and edited in message
    assert "delete" in message and "make prefetch" in message
    ensure_cached(resource, cached, client)
    assert cached.read_bytes() == pinned


USERS_LM22 = "Gene symbol\tB cells naive\nABCB4\t555.7\n"


def _fetched_user_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The user's own LM22 file and the workflow's copy of it (resources.paths.cibersort_lm22)."""
    resource = get_resource("cibersort_lm22")
    own = tmp_path / "LM22.txt"
    own.write_text(USERS_LM22)
    cached = resource.cache_path(tmp_path)
    fetch_resource(resource, cached, None, user_copy=own)
    return own, cached


def test_cached_user_copy_must_equal_the_users_file(tmp_path: Path):
    own, cached = _fetched_user_copy(tmp_path)
    cached.unlink()
    cached.write_text("Gene symbol\tB cells naive\nABCB4\t1.0\n")  # edited (a new file)
    verified_resource_files({"lm22": str(cached)}, None, {"cibersort_lm22": str(own)})
    assert cached.read_text() == own.read_text()


def test_a_job_restores_an_edited_cached_user_copy(tmp_path: Path):
    own, cached = _fetched_user_copy(tmp_path)
    cached.unlink()
    cached.write_text("Gene symbol\tB cells naive\nABCB4\t1.0\n")
    verify_job_resources({"lm22": str(cached)}, {"store": str(tmp_path / "store")}, {"cibersort_lm22": str(own)})
    assert cached.read_text() == USERS_LM22


def test_editing_the_workflows_copy_in_place_never_changes_the_users_file(tmp_path: Path):
    own, cached = _fetched_user_copy(tmp_path)
    with open(cached, "r+") as handle:  # as an editor that keeps the inode writes
        handle.write("Gene symbol\tB cells naive\nABCB4\t111.1\n")
    assert own.read_text() == USERS_LM22


def test_resources_from_mirror_match_the_lock(shared_reference: Path, tmp_path: Path):
    mirror = resource_mirror(shared_reference, tmp_path / "mirror")
    client = quick_client(tmp_path / "store", mirror=str(mirror))
    for resource_id in SHARED_FILES:
        resource = get_resource(resource_id)
        record = fetch_resource(resource, resource.cache_path(tmp_path), client)
        assert record["pinned"] and resource.cache_path(tmp_path).stat().st_size == resource.size


def test_resource_with_a_different_sha256_is_refused(shared_reference: Path, tmp_path: Path):
    resource = get_resource("mcpcounter_genes")
    url = urllib.parse.urlsplit(resource.url)
    served = tmp_path / "served"
    target = served / url.hostname / url.path.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_bytes((shared_reference / SHARED_FILES[resource.id]).read_bytes().replace(b"CD8B", b"CD8X"))
    with LoopbackServer(served) as server:
        client = quick_client(tmp_path / "store", mirror=server.url, attempts=2)
        with pytest.raises(ResourceChecksumError) as error:
            fetch_resource(resource, resource.cache_path(tmp_path), client)
    message = str(error.value)
    assert "mcpcounter_genes" in message and resource.sha256 in message and "sha256 " in message
    assert not resource.cache_path(tmp_path).exists() and not list((tmp_path / "store").rglob("*.part"))


def test_restricted_resource_needs_a_user_copy(tmp_path: Path):
    resource = get_resource("cibersort_lm22")
    with pytest.raises(ConfigError, match="resources.paths.cibersort_lm22"):
        fetch_resource(resource, resource.cache_path(tmp_path), quick_client(tmp_path / "store"))
    own = tmp_path / "LM22.txt"
    own.write_text("Gene symbol\tB cells naive\nABCB4\t555.7\n")
    record = fetch_resource(resource, resource.cache_path(tmp_path), quick_client(tmp_path / "store"), user_copy=own)
    assert record["pinned"] is False and resource.cache_path(tmp_path).read_text() == own.read_text()


# --- resources come by themselves: fetch jobs planned before the analyses that read them ------------------


def config_with_defaults(path: Path) -> dict:
    """A config file as the workflow sees it: validated, with the schema's defaults filled in."""
    from snakemake.utils import validate

    config = yaml.safe_load(path.read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def test_resource_plan_uses_fetched_resources_unless_offline_and_never_downloads_restricted_ones(tmp_path: Path):
    lock = load_lock()
    needs = {
        "hallmark": ["msigdb_hallmark_v7_0"],
        "ferrdb": ["ferrdb_v2_driver", "ferrdb_v2_marker"],
        "lm22": ["cibersort_lm22"],
    }
    usable, left_out = ResourcePlan(lock).split(needs)
    assert usable == {
        "hallmark": ["resources/cache/msigdb_hallmark_v7_0/h.all.v7.0.symbols.gmt"],
        "ferrdb": ["resources/cache/ferrdb_v2_driver/driver.csv", "resources/cache/ferrdb_v2_marker/marker.csv"],
    }
    assert "restrictive licence" in left_out["lm22"] and "set resources.paths.cibersort_lm22" in left_out["lm22"]
    own = {"cibersort_lm22": str(tmp_path / "LM22.txt"), "ferrdb_v2_marker": str(tmp_path / "marker.csv")}
    usable, left_out = ResourcePlan(lock, fetch=False, user_paths=own).split(needs)
    assert set(usable) == {"lm22"}  # offline, only the user's copies are used
    assert left_out["ferrdb"].startswith(
        "resource ferrdb_v2_driver not fetched: this run is offline (resources.fetch: "
        "false); to include it, set resources.fetch: true"
    )
    assert "make prefetch" in left_out["hallmark"] and "ferrdb_v2_marker" not in left_out["ferrdb"]
    assert ResourcePlan(lock, fetch=False).prefetch_ids("all") == []
    assert ResourcePlan(lock, user_paths=own).prefetch_ids(["pcbc_stemsig"]) == ["pcbc_stemsig", *own]
    with pytest.raises(ConfigError, match="resource 'msigdb_h' is not in lock.yaml"):
        ResourcePlan(lock).split({"typo": ["msigdb_h"]})


SHIPPED_COHORT_CONFIGS = sorted((REPO / "config" / "cohorts").glob("*.yaml"))
SIGNATURE_RESOURCES = {
    "pcbc_stemsig",
    "charoentong_28",
    "ferrdb_v2_driver",
    "ferrdb_v2_suppressor",
    "ferrdb_v2_marker",
    "msigdb_c2_v7_1",
}  # mRNAsi, 28 immune cell types, FerrDb, C2 stemness
ENRICHMENT_RESOURCES = {
    "wikipathways_wp4313",
    "ferrdb_v2_driver",
    "ferrdb_v2_suppressor",
    "ferrdb_v2_marker",
    "msigdb_c2_v7_1",
    "msigdb_hallmark_v7_0",
}


def planned_dag(workdir: Path, config: Path) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """The job graph Snakemake plans (`--dag`, nothing runs): {job id: label}, {(upstream, downstream)}."""
    dot = run_snakemake(workdir, "--dag", "--configfile", str(config)).stdout
    labels = dict(re.findall(r'^\s*(\d+)\[label = "([^"]*)"', dot, flags=re.MULTILINE))
    edges = set(re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.MULTILINE))
    return labels, edges


def fetched_before(labels: dict[str, str], edges: set[tuple[str, str]], rule: str) -> list[set[str]]:
    """For each planned job of `rule`: the resource ids of the fetch_resource jobs it waits for."""
    resource_of = {
        job: re.search(r"resource: (\S+)", label).group(1)
        for job, label in labels.items()
        if label.startswith("fetch_resource")
    }
    return [
        {resource_of[up] for up, down in edges if down == job and up in resource_of}
        for job, label in labels.items()
        if label.split("\\n")[0] == rule
    ]


@pytest.mark.parametrize("shipped", SHIPPED_COHORT_CONFIGS, ids=lambda path: path.stem)
def test_real_config_plans_resource_fetches_before_the_analyses(shipped: Path, tmp_path: Path):
    """A shipped cohort config, with no resource key, plans fetch_resource for every resource the signature and
    enrichment stages read, upstream of those jobs; restricted resources are never planned."""
    config = yaml.safe_load(shipped.read_text())
    assert (config.get("resources") or {}).get("fetch", True), f"{shipped.name} must not be an offline run"
    labels, edges = planned_dag(tmp_path, shipped)  # as shipped: every cohort config has its comparisons
    scoring = fetched_before(labels, edges, "signature_scores")
    enrichment = fetched_before(labels, edges, "enrichment")
    assert scoring and all(ids == SIGNATURE_RESOURCES for ids in scoring), scoring
    assert enrichment and all(ids == ENRICHMENT_RESOURCES for ids in enrichment), enrichment
    planned = {
        re.search(r"resource: (\S+)", label).group(1) for label in labels.values() if label.startswith("fetch_resource")
    }
    assert planned == SIGNATURE_RESOURCES | ENRICHMENT_RESOURCES  # never cibersort_lm22 or kegg_hsa04216


def test_offline_demo_config_plans_no_resource_fetch(tmp_path: Path):
    labels, _ = planned_dag(tmp_path, REPO / "config" / "config.yaml")
    rules = {label.split("\\n")[0] for label in labels.values()}
    assert {"signature_scores", "enrichment"} <= rules and "fetch_resource" not in rules


def _serve_resources(shared: Path, served: Path, config: Path, url: str) -> None:
    """The shipped TCGA-LIHC config, with its downloads (and the resources) read from `url` as mirror."""
    resource_mirror(shared, served)
    settings = yaml.safe_load((REPO / "config" / "cohorts" / "tcga-lihc.yaml").read_text())
    settings["mirror"] = url
    settings["download"] = {"attempts": 2, "backoff": 0}
    config.write_text(yaml.safe_dump(settings))


@pytest.mark.shared
def test_real_config_run_fetches_and_verifies_its_resources(shared_reference: Path, tmp_path: Path):
    """The resource jobs of a real-config run (everything up to fetch_resource) download each resource the
    analyses need from the loopback mirror and leave it verified in resources/cache; nothing else runs."""
    config = tmp_path / "config.yaml"
    with LoopbackServer(tmp_path / "served") as server:
        _serve_resources(shared_reference, tmp_path / "served", config, server.url)
        run_snakemake(tmp_path, "--until", "fetch_resource", "--configfile", str(config))
        for resource_id in SIGNATURE_RESOURCES:
            resource = get_resource(resource_id)
            cached = resource.cache_path(tmp_path)
            assert hashlib.sha256(cached.read_bytes()).hexdigest() == resource.sha256, resource_id
            url = urllib.parse.urlsplit(resource.url)
            assert server.count(f"/{url.hostname}{url.path}") == 1, resource_id  # read from the mirror, once
    assert not (tmp_path / "results" / "raw").exists(), "--until fetch_resource downloaded a cohort"


@pytest.mark.shared
def test_real_config_run_refuses_a_resource_that_differs_from_the_lock(shared_reference: Path, tmp_path: Path):
    config = tmp_path / "config.yaml"
    resource = get_resource("charoentong_28")
    with LoopbackServer(tmp_path / "served") as server:
        _serve_resources(shared_reference, tmp_path / "served", config, server.url)
        served = (
            tmp_path
            / "served"
            / urllib.parse.urlsplit(resource.url).hostname
            / urllib.parse.urlsplit(resource.url).path.lstrip("/")
        )
        data = served.read_bytes()
        served.unlink()
        served.write_bytes(data.replace(b"CD8", b"CD9", 1))  # same size, other bytes
        result = run_snakemake(tmp_path, str(resource.cache_path()), "--configfile", str(config), check=False)
    assert result.returncode != 0
    log = (tmp_path / "results" / "logs" / "resources" / resource.id / f"{resource.filename}.log").read_text()
    assert "charoentong_28" in log and resource.sha256 in log and "does not match resources/lock.yaml" in log
    assert not resource.cache_path(tmp_path).exists()


@pytest.mark.e2e
def test_workflow_with_resource_mirror(shared_reference: Path, demo_dir: Path, tmp_path: Path):
    """The workflow from one mirror holding the demo cohorts and the shared reference resources."""
    # a copy of the session's demo mirror (the resource links are added to it; demo_dir stays as written)
    mirror = resource_mirror(shared_reference, shutil.copytree(demo_dir / "mirror", tmp_path / "mirror"))
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["demo"]["enabled"] = False
    config["mirror"] = str(mirror)
    config["cohorts"] = {"demo_geo": config["cohorts"]["demo_geo"]}
    config["survival"]["lasso"]["enabled"] = False  # its discovery cohort (demo_tcga) is not in this run
    config["resources"]["fetch"] = True  # not offline: the analyses that need resources fetch them as jobs
    config["enrichment"]["permutations"] = 100  # the test asks which collections ran, not for their p-values
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    # the jobs that read resources (the report of a cohort is checked by the demo run itself)
    results = tmp_path / "results" / "demo_geo"
    run_snakemake(
        tmp_path,
        "prefetch",
        "results/demo_geo/scores/scores.tsv",
        "results/demo_geo/enrichment/tumour_vs_normal/gsea.tsv",
        "--configfile",
        str(tmp_path / "config.yaml"),
    )
    for resource_id in SHARED_FILES:
        resource = get_resource(resource_id)
        assert resource.cache_path(tmp_path).stat().st_size == resource.size
    scores = pd.read_csv(results / "scores" / "scores.tsv", sep="\t", index_col="sample_id")
    assert any(column.startswith("charoentong28__") for column in scores.columns)
    gsea = pd.read_csv(results / "enrichment" / "tumour_vs_normal" / "gsea.tsv", sep="\t")
    assert {"hallmark", "stemness", "ferrdb_v2", "wp4313"} <= set(gsea["collection"])


@pytest.mark.e2e
def test_interrupted_download_resumes_with_rerun_incomplete(demo_dir: Path, tmp_path: Path):
    with LoopbackServer(tmp_path / "served") as server:
        server.load_gdc_mirror(demo_dir / "mirror", "TCGA-DEMO")
        stalled = server.gdc_files[40]["file_id"]
        server.faults[f"/gdcapi/data/{stalled}"] = ["stall"]
        server.stall.set()
        config = {
            "results": "results",
            "download": {"gdc_api": server.gdc_api, "gdc_batch_files": 1, "read_timeout": 60, "store": "downloads"},
            "cohorts": {"lihc": {"source": "gdc", "project": "TCGA-DEMO", "simulated": True}},
        }
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--cores",
            "1",
            "results/raw/lihc",
            "--configfile",
            str(tmp_path / "config.yaml"),
        ]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path, start_new_session=True
        )
        try:
            assert server.stalled.wait(120), "the download never reached the stalled file"
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        server.stall.clear()
        done_before = {p for _, p, _ in server.requests if p.startswith("/gdcapi/data/")} - {f"/gdcapi/data/{stalled}"}
        assert len(done_before) == 40
        time.sleep(0.2)
        assert not list((tmp_path / "downloads").rglob(f"{stalled}")), "a partial file got its final name"
        run_snakemake(tmp_path, "--unlock", "--configfile", str(tmp_path / "config.yaml"))  # the kill left the lock
        stuck = run_snakemake(
            tmp_path,
            "results/raw/lihc",
            "--no-rerun-incomplete",
            "--configfile",
            str(tmp_path / "config.yaml"),
            check=False,
        )
        assert stuck.returncode != 0 and "incomplete" in (stuck.stdout + stuck.stderr).lower()
        n_before = len(server.requests)
        run_snakemake(tmp_path, "results/raw/lihc", "--rerun-incomplete", "--configfile", str(tmp_path / "config.yaml"))
        again = {p for _, p, _ in server.requests[n_before:] if p.startswith("/gdcapi/data/")}
        assert not (again & done_before), "verified files were fetched again"
        assert len(list((tmp_path / "results" / "raw" / "lihc" / "data").iterdir())) == len(server.gdc_files)
