import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ferrostem.config import validate_config
from ferrostem.errors import ConfigError

from conftest import REPO, run_snakemake

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
DEMO = yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_demo_config_is_valid():
    validate_config(DEMO, SCHEMA)


def mutate(change):
    config = copy.deepcopy(DEMO)
    change(config)
    return config


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda c: c["cohorts"]["demo_tcga"].update(source="gdx"),
            r"cohorts\.demo_tcga\.source = 'gdx' is not allowed; allowed values: gdc, xena, geo",
        ),
        (
            lambda c: c["cohorts"].update({"../etc": {"source": "gdc", "project": "TCGA-LIHC"}}),
            r"key '\.\./etc' is not allowed",
        ),
        (
            lambda c: c["cohorts"]["demo_tcga"].update(projet="TCGA-LIHC"),
            r"cohorts\.demo_tcga: Additional properties are not allowed \('projet' was unexpected\); allowed keys: .*project",  # noqa: E501 (a message or record quoted whole)
        ),
        (lambda c: c["cohorts"]["demo_tcga"].pop("source"), r"cohorts\.demo_tcga: 'source' is a required property"),
        (
            lambda c: c["cohorts"]["demo_geo"].update(accession="14520"),
            r"cohorts\.demo_geo\.accession = '14520' does not match the pattern",
        ),
        (
            lambda c: c["cohorts"]["demo_tcga"]["harmonise"].update(one_sample_per_patient="yes"),
            r"cohorts\.demo_tcga\.harmonise\.one_sample_per_patient = 'yes' should be of type boolean",
        ),
        (
            lambda c: c["cohorts"]["demo_geo"]["geo"].update(time_unit="fortnights"),
            r"time_unit = 'fortnights' is not allowed; allowed values: days, weeks, months, years",
        ),
        (
            lambda c: c["cohorts"]["demo_geo"]["geo"].pop("time_unit"),
            r"cohorts\.demo_geo\.geo: 'time_unit' is a required property: geo\.fields maps survival times: state "
            r"their unit \(days, weeks, months or years\)",
        ),
        (
            lambda c: c["cohorts"]["demo_geo"]["geo"]["fields"].update({"survival": "x"}),
            r"cohorts\.demo_geo\.geo\.fields: key 'survival' is not allowed",
        ),
        (lambda c: c.update(cohorts={}), r"cohorts = \{\}: \{\} should be non-empty"),
        (lambda c: c.update(colour="red"), r"Additional properties are not allowed \('colour' was unexpected\)"),
        (lambda c: c["cohorts"]["demo_geo"].pop("accession"), r"cohorts\.demo_geo: source 'geo' needs 'accession'"),
        (lambda c: c["cohorts"]["demo_tcga"].pop("project"), r"cohorts\.demo_tcga: source 'gdc' needs 'project'"),
    ],
)
def test_config_errors_name_key_value_and_allowed(change, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(mutate(change), SCHEMA)


def test_all_errors_reported_at_once():
    def two_errors(c):
        c["cohorts"]["demo_tcga"]["source"] = "gdx"
        c["cohorts"]["demo_geo"]["geo"]["scale"] = "ln"

    with pytest.raises(ConfigError) as error:
        validate_config(mutate(two_errors), SCHEMA)
    assert "'gdx'" in str(error.value) and "'ln'" in str(error.value)


def test_invalid_config_stops_before_any_job(tmp_path: Path):
    bad = mutate(lambda c: c["cohorts"]["demo_tcga"].update(source="gdx"))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = run_snakemake(tmp_path, "--configfile", str(path), check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "cohorts.demo_tcga.source = 'gdx' is not allowed; allowed values: gdc, xena, geo" in output
    assert not (tmp_path / "results").exists()


def test_geo_time_unit_is_required_only_when_survival_times_are_mapped():
    def without_times(c):
        geo = c["cohorts"]["demo_geo"]["geo"]
        geo.pop("time_unit")
        # an endpoint is its time and its status: both go (a status without a time is an error now)
        geo["fields"] = {k: v for k, v in geo["fields"].items() if k.split(".")[0] != "OS"}

    validate_config(mutate(without_times), SCHEMA)
    for path in sorted((REPO / "config").glob("**/*.yaml")):
        config = yaml.safe_load(path.read_text())
        for cohort_id, cohort in config["cohorts"].items():
            fields = cohort.get("geo", {}).get("fields", {})
            if any(key.endswith(".time") for key in fields):
                assert cohort["geo"].get("time_unit"), f"{path}: {cohort_id} maps survival times without time_unit"


BROKEN_YAML = "results: results\ncohorts:\n  demo: {source: gdc, project: TCGA-DEMO\n  other: 1\n"


def test_config_file_errors_name_file_line_and_column(tmp_path: Path):
    from ferrostem.config import load_config_file

    with pytest.raises(ConfigError, match=r"config file .*missing\.yaml not found"):
        load_config_file(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_YAML)
    with pytest.raises(
        ConfigError,
        match=r"broken\.yaml, line 4, column 8: YAML syntax error: expected ',' or '}', "
        r"but got ':' \(while parsing a flow mapping at line 3, column 9\)",
    ):
        load_config_file(broken)
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("cohorts:\n\tdemo: 1\n")
    with pytest.raises(ConfigError, match=r"tabs\.yaml, line 2, column 1: YAML syntax error: found character '\\t'"):
        load_config_file(tabs)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"list\.yaml must hold a mapping of keys at top level, found list"):
        load_config_file(listing)
    assert load_config_file(REPO / "config/config.yaml")["cohorts"]


def test_broken_default_config_is_one_line_without_traceback(tmp_path: Path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(BROKEN_YAML)
    result = run_snakemake(tmp_path, "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config/config.yaml, line 4, column 8: YAML syntax error" in output
    assert "Traceback" not in output


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a make target of the repository with the interpreter running the tests (never reinstalling it)."""
    venv = Path(sys.executable).parent.parent
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        ["make", "-C", str(REPO), "-o", str(venv / ".installed"), f"VENV={venv}", *args],
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("target", ["run", "prefetch", "check-config"])
def test_make_targets_check_the_config_file_first(tmp_path: Path, target: str):
    missing = _make(target, f"CONFIG={tmp_path / 'missing.yaml'}")
    assert missing.returncode != 0
    assert f"ConfigError: config file {tmp_path / 'missing.yaml'} not found" in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_YAML)
    result = _make(target, f"CONFIG={broken}")
    assert result.returncode != 0
    assert f"ConfigError: {broken}, line 4, column 8: YAML syntax error" in result.stderr
    for output in (missing, result):
        assert "Traceback" not in output.stdout + output.stderr
        assert "snakemake" not in output.stdout  # stopped before Snakemake started


def _snakemake_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if "snakemake --cores" in line)


def test_make_runs_within_the_memory_the_machine_has_unless_told_otherwise(monkeypatch):
    """`make demo` / `make run` pass `--resources mem_mb=N`: N the available memory less 0.5 GB by default (so that
    jobs never start side by side beyond what the machine holds), the user's MEM_MB, or no limit with MEM_MB=."""
    monkeypatch.delenv("MEM_MB", raising=False)
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        assert "--resources" not in _snakemake_line(_make("-n", "demo"))
        return
    available_mb = next(
        int(line.split()[1]) // 1024 for line in meminfo.read_text().splitlines() if line.startswith("MemAvailable:")
    )
    budget = re.search(r"--resources mem_mb=(\d+)", _snakemake_line(_make("-n", "demo")))
    assert budget, "make demo set no memory budget"
    # what other processes allocate between the two readings moves it a little
    assert int(budget[1]) >= 1000 and abs(int(budget[1]) - max(available_mb - 512, 1000)) < 2000, budget[1]
    assert "--resources" not in _snakemake_line(_make("-n", "demo", "MEM_MB="))
    config = str(REPO / "config" / "config.yaml")
    assert "--resources mem_mb=8000 " in _snakemake_line(_make("-n", "run", f"CONFIG={config}", "MEM_MB=8000"))


def test_check_config_reports_schema_errors(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(mutate(lambda c: c["cohorts"]["demo_tcga"].update(source="gdx"))))
    result = _make("check-config", f"CONFIG={bad}")
    assert result.returncode != 0 and "cohorts.demo_tcga.source = 'gdx' is not allowed" in result.stderr
    assert _make("check-config", f"CONFIG={REPO / 'config/config.yaml'}").returncode == 0


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda c: c["survival"]["lasso"].update(discovery="demo_tgca"),
            r"survival\.lasso\.discovery: 'demo_tgca' is not a configured cohort \(cohorts: demo_tcga, demo_geo\)",
        ),
        (
            lambda c: c["survival"]["lasso"].update(validation=["demo_geo", "GSE14520"]),
            r"survival\.lasso\.validation: 'GSE14520' is not a configured cohort",
        ),
        (
            lambda c: c["survival"]["lasso"].pop("discovery"),
            r"survival\.lasso: 'discovery' is a required property: an enabled LASSO-Cox model needs the cohort it is "
            r"trained on",
        ),
        (
            lambda c: c["survival"]["lasso"].pop("universe"),
            r"survival\.lasso: 'universe' is a required property: an enabled LASSO-Cox model needs .*candidate genes",
        ),
        (
            lambda c: c.setdefault("pancancer", {}).update(enabled=True) or c["cohorts"].pop("demo_geo"),
            r"pancancer\.enabled: the pan-cancer page needs two or more cohorts, found 1",
        ),
        (
            lambda c: c.setdefault("pancancer", {}).update(enabled=True) or c["signatures"].update(enabled=False),
            r"pancancer\.enabled: the pan-cancer page reads the signature scores; set signatures\.enabled: true",
        ),
    ],
)
def test_blocks_that_name_or_need_cohorts_are_checked_with_the_config(change, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(mutate(change), SCHEMA)


def test_a_disabled_lasso_needs_no_discovery_cohort_or_universe():
    validate_config(mutate(lambda c: c["survival"].update(lasso={"enabled": False})), SCHEMA)


def test_settings_blocks_name_unknown_and_missing_keys():
    from ferrostem.config import settings_from_block
    from ferrostem.de import Comparison
    from ferrostem.sources.http import RetryPolicy

    with pytest.raises(ConfigError, match=r"comparison t_vs_n: missing required keys \['reference'\]"):
        Comparison.from_config({"name": "t_vs_n", "column": "tissue", "test": "tumor"})
    with pytest.raises(ConfigError, match=r"comparison t_vs_n: unknown keys \['colum'\]"):
        Comparison.from_config({"name": "t_vs_n", "colum": "tissue", "column": "tissue", "test": 1, "reference": 0})
    assert Comparison.from_config({"name": "t", "column": "stage", "test": 2, "reference": 1}).test == "2"
    with pytest.raises(ConfigError, match=r"download: unknown keys \['attempt'\]"):
        RetryPolicy.from_config({"attempt": 3, "store": "downloads"}, ignore=["store"])
    assert settings_from_block(RetryPolicy, {"attempts": 3}, "download").attempts == 3
