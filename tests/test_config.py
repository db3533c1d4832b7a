import copy
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
        (lambda c: c["cohorts"]["demo_tcga"].update(source="gdx"),
         r"cohorts\.demo_tcga\.source = 'gdx' is not allowed; allowed values: gdc, xena, geo"),
        (lambda c: c["cohorts"].update({"../etc": {"source": "gdc", "project": "TCGA-LIHC"}}),
         r"key '\.\./etc' is not allowed"),
        (lambda c: c["cohorts"]["demo_tcga"].update(projet="TCGA-LIHC"),
         r"cohorts\.demo_tcga: Additional properties are not allowed \('projet' was unexpected\); allowed keys: .*project"),
        (lambda c: c["cohorts"]["demo_tcga"].pop("source"), r"cohorts\.demo_tcga: 'source' is a required property"),
        (lambda c: c["cohorts"]["demo_geo"].update(accession="14520"),
         r"cohorts\.demo_geo\.accession = '14520' does not match the pattern"),
        (lambda c: c["cohorts"]["demo_tcga"]["harmonise"].update(one_sample_per_patient="yes"),
         r"cohorts\.demo_tcga\.harmonise\.one_sample_per_patient = 'yes' should be of type boolean"),
        (lambda c: c["cohorts"]["demo_geo"]["geo"].update(time_unit="fortnights"),
         r"time_unit = 'fortnights' is not allowed; allowed values: days, weeks, months, years"),
        (lambda c: c["cohorts"]["demo_geo"]["geo"].pop("time_unit"),
         r"cohorts\.demo_geo\.geo: 'time_unit' is a required property: geo\.fields maps survival times: state "
         r"their unit \(days, weeks, months or years\)"),
        (lambda c: c["cohorts"]["demo_geo"]["geo"]["fields"].update({"survival": "x"}),
         r"cohorts\.demo_geo\.geo\.fields: key 'survival' is not allowed"),
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
        geo["fields"] = {k: v for k, v in geo["fields"].items() if not k.endswith(".time")}
    validate_config(mutate(without_times), SCHEMA)
    for path in sorted((REPO / "config").glob("**/*.yaml")):
        config = yaml.safe_load(path.read_text())
        for cohort_id, cohort in config["cohorts"].items():
            fields = cohort.get("geo", {}).get("fields", {})
            if any(key.endswith(".time") for key in fields):
                assert cohort["geo"].get("time_unit"), f"{path}: {cohort_id} maps survival times without time_unit"
