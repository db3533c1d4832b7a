"""The `survival:` block read once: one complete SurvivalSettings whose defaults are the schema's, and a survival
stage module that the analysis scripts import without a report module."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys

import pytest
import yaml
from snakemake.utils import validate

from ferrostem.config import with_schema_defaults
from ferrostem.errors import ConfigError
from ferrostem.survival import SurvivalSettings

from conftest import REPO

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
SURVIVAL_SCHEMA = yaml.safe_load(SCHEMA.read_text())["properties"]["survival"]


def test_settings_hold_every_key_of_the_schema_block_with_its_default():
    settings = SurvivalSettings.from_config({})
    assert {f.name for f in dataclasses.fields(settings)} == set(SURVIVAL_SCHEMA["properties"])
    for key, node in SURVIVAL_SCHEMA["properties"].items():
        if "default" in node and node.get("type") != "object":
            assert getattr(settings, key) == node["default"], key
    cutpoint = SURVIVAL_SCHEMA["properties"]["cutpoint"]["properties"]
    assert dataclasses.asdict(settings.cutpoint) == {k: v["default"] for k, v in cutpoint.items()}
    lasso = SURVIVAL_SCHEMA["properties"]["lasso"]["properties"]
    assert {f.name for f in dataclasses.fields(settings.lasso)} == set(lasso)
    assert settings.lasso.enabled is False and settings.lasso.endpoint == "OS" and settings.lasso.discovery is None


def test_configured_values_reach_the_settings():
    settings = SurvivalSettings.from_config(
        {
            "ph_alpha": 0.01,
            "plots_top": 2,
            "cutpoint": {"p_method": "permutation"},
            "panels": {"p": ["GPX4"]},
            "lasso": {"enabled": True, "folds": 3, "discovery": "a", "universe": ["GPX4", "SLC7A11"]},
        }
    )
    assert settings.ph_alpha == 0.01 and settings.plots_top == 2 and settings.panels == {"p": ["GPX4"]}
    assert settings.cutpoint.p_method == "permutation" and settings.cutpoint.permutations == 1000
    assert settings.lasso.enabled and settings.lasso.folds == 3 and settings.lasso.validation == []
    assert settings.lasso.discovery == "a" and settings.lasso.universe == ["GPX4", "SLC7A11"]


def test_defaults_are_filled_as_snakemake_fills_them():
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    block = copy.deepcopy(config["survival"])
    del block["ph_check_top"], block["cutpoint"]["permutations"], block["lasso"]["folds"]
    config["survival"] = copy.deepcopy(block)
    validate(config, str(SCHEMA))
    assert with_schema_defaults(block, "survival") == config["survival"]
    assert "permutations" not in block["cutpoint"]  # the caller's block is left as it was


@pytest.mark.parametrize(
    "block,message",
    [
        ({"ph_alhpa": 0.01}, "ph_alhpa"),
        ({"cutpoint": {"p_method": "exact"}}, "survival.cutpoint.p_method: 'exact' is not one of"),
        ({"ph_alpha": 1.5}, "survival.ph_alpha: 1.5 is greater than or equal to the maximum of 1"),
    ],
)
def test_a_bad_block_is_a_config_error_naming_the_key(block, message):
    with pytest.raises(ConfigError, match=message):
        SurvivalSettings.from_config(block)


def test_the_stage_module_needs_no_report_module():
    # what workflow/scripts/lasso_cox.py, survival_cross_cohort.py and pancancer.py import
    code = (
        "import sys, ferrostem.survival_stage, ferrostem.pancancer; "
        "print(sorted(m for m in sys.modules if m.startswith('ferrostem.') and m.endswith('_report')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": ""},
    ).stdout
    assert out.strip() == "[]"
