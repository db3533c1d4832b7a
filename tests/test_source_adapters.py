"""One adapter per data source (download + load), looked up by the cohort's `source`."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from ferrostem import harmonise
from ferrostem.download import download_cohort
from ferrostem.errors import ConfigError
from ferrostem.sources import gdc, geo, xena


def test_every_schema_source_has_one_adapter_whose_download_lives_in_its_module():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    enums = []

    def walk(node):
        if isinstance(node, dict):
            if "source" in node and isinstance(node["source"], dict) and "enum" in node["source"]:
                enums.append(node["source"]["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert enums, "config.schema.yaml declares no cohort `source` enum"
    for enum in enums:
        assert set(enum) == set(harmonise.SOURCES)
    modules = {"gdc": gdc, "xena": xena, "geo": geo}
    for name, adapter in harmonise.SOURCES.items():
        assert adapter.name == name
        assert adapter.download is modules[name].download
        assert callable(adapter.load_cohort)
    assert {name for name, adapter in harmonise.SOURCES.items() if adapter.tcga_cdr} == {"gdc", "xena"}


def test_an_unknown_source_is_refused_by_download_and_harmonise_alike(tmp_path):
    cohort = {"source": "arrayexpress", "accession": "E-MTAB-1"}
    expected = r"cohort E-MTAB-1: source 'arrayexpress' is not one of gdc, xena, geo"
    with pytest.raises(ConfigError, match=expected):
        download_cohort(cohort, {"store": str(tmp_path / "store")}, tmp_path / "raw")
    with pytest.raises(ConfigError, match=expected):
        harmonise.harmonise_cohort(cohort, tmp_path / "raw")
