"""The config checked early: at validation (ids, names) and right after harmonisation (columns, levels, genes)."""

import copy

import pandas as pd
import pytest
import yaml

from ferrostem.checks import CohortAnnotations
from ferrostem.checks import check_cohort as check_annotations
from ferrostem.config import catalogue_ids, validate_config
from ferrostem.errors import ConfigError

from conftest import REPO

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
DEMO = yaml.safe_load((REPO / "config/config.yaml").read_text())
IDS = catalogue_ids(REPO / "resources/signatures")


def invalid(change) -> str:
    config = copy.deepcopy(DEMO)
    change(config)
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA, IDS)
    return str(error.value)


def test_demo_config_passes_the_catalogue_checks():
    validate_config(DEMO, SCHEMA, IDS)


def test_comparison_names_unique_per_cohort():
    def twice(c):
        c["cohorts"]["demo_tcga"]["comparisons"].append(dict(c["cohorts"]["demo_tcga"]["comparisons"][0]))

    assert (
        "cohorts.demo_tcga.comparisons: names ['tumour_vs_normal'] are used more than once; each comparison "
        "needs its own name"
    ) in invalid(twice)


def test_comparison_test_equal_to_reference_and_compared_covariate():
    def same(c):
        c["cohorts"]["demo_geo"]["comparisons"][0].update(reference="tumor", covariates=["tissue"])

    message = invalid(same)
    assert "cohorts.demo_geo.comparisons[0] (tumour_vs_normal): test and reference are both 'tumor'" in message
    assert (
        "cohorts.demo_geo.comparisons[0] (tumour_vs_normal): the compared column 'tissue' is also listed as a covariate"
        in message
    )


def test_signature_ids_checked_against_the_catalogue():
    message = invalid(
        lambda c: c["signatures"].update(
            include=["ferroptosis_core_resistance", "no_such_signature"], exclude=["estimat"]
        )
    )
    assert "signatures.include: unknown signature id(s) ['no_such_signature']" in message
    assert "signatures.exclude: unknown signature id(s) ['estimat']" in message


def test_heatmap_order_by_names_a_scored_signature():
    assert (
        "signatures.heatmap_order_by = 'ferroptosis_core_resistanse' is not a signature of the catalogue; "
        "did you mean ferroptosis_core_resistance"
    ) in invalid(lambda c: c["signatures"].update(heatmap_order_by="ferroptosis_core_resistanse"))
    assert (
        "signatures.heatmap_order_by = 'ferroptosis_core_resistance': signature 'ferroptosis_core_resistance' "
        "is not scored"
    ) in invalid(lambda c: c["signatures"].update(exclude=["ferroptosis_core_resistance"]))
    config = copy.deepcopy(DEMO)
    config["signatures"]["heatmap_order_by"] = "estimate__immune"  # a part of a catalogue entry
    validate_config(config, SCHEMA, IDS)
    config["signatures"]["enabled"] = False
    config["signatures"]["heatmap_order_by"] = "anything"  # not scored at all: nothing to check
    validate_config(config, SCHEMA, IDS)


def test_lasso_universe_catalogue_ids():
    assert "survival.lasso.universe.catalogue: unknown signature id(s) ['hcc_frg_10']" in invalid(
        lambda c: c["survival"]["lasso"].update(universe={"catalogue": ["hcc_frg_10"]})
    )


def check_cohort(adata, cohort, checks):
    return check_annotations(CohortAnnotations.from_anndata(adata), cohort, checks)


def test_annotations_read_from_the_h5ad_without_the_matrices(demo_array, tmp_path):
    path = tmp_path / "cohort.h5ad"
    demo_array.write_h5ad(path)
    read = CohortAnnotations.read(path)
    expected = CohortAnnotations.from_anndata(demo_array)
    assert read.genes == expected.genes and read.assay == "microarray" and sorted(read.layers) == ["log2", "tpm"]
    pd.testing.assert_frame_equal(read.obs, expected.obs)


COMPARISON = {"name": "tumour_vs_normal", "column": "tissue", "test": "tumor", "reference": "normal"}


def test_demo_cohorts_pass_the_data_checks(demo_rnaseq, demo_array):
    genes = DEMO["survival"]["genes_of_interest"]
    for cohort, adata in (("demo_tcga", demo_rnaseq), ("demo_geo", demo_array)):
        record = check_cohort(adata, cohort, {"comparisons": [COMPARISON], "genes_of_interest": genes})
        assert record["comparisons"][0]["n_test"] > 0 and record["comparisons"][0]["n_reference"] == 20
        assert record["notes"] == []
    assert check_cohort(demo_rnaseq, "demo_tcga", {"comparisons": [COMPARISON]})["comparisons"][0]["method"] == "deseq2"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"column": "tisue"}, r"column\(s\) \['tisue'\] are not sample annotations; available: \[.*'tissue'"),
        (
            {"reference": "Normal"},
            r"reference level 'Normal' does not occur in column 'tissue'; levels present: \['normal', 'tumor'\]",
        ),
        ({"covariates": ["sex", "ages"]}, r"column\(s\) \['ages'\] are not sample annotations"),
        ({"method": "limma", "paired": True, "pair_by": "sample_id"}, r"paired design|usable sample"),
    ],
)
def test_comparison_that_does_not_fit_the_cohort_is_named(demo_rnaseq, change, message):
    with pytest.raises(
        ConfigError,
        match=r"the config does not fit the harmonised cohort:\n  - cohort demo_tcga, comparison 'tumour_vs_normal': "
        + message,
    ):
        check_cohort(demo_rnaseq, "demo_tcga", {"comparisons": [{**COMPARISON, **change}]})


def test_deseq2_on_an_array_cohort_is_named(demo_array):
    with pytest.raises(ConfigError, match=r"method deseq2 needs raw counts"):
        check_cohort(demo_array, "demo_geo", {"comparisons": [{**COMPARISON, "method": "deseq2"}]})


def test_every_problem_is_listed_at_once(demo_rnaseq):
    with pytest.raises(ConfigError) as error:
        check_cohort(
            demo_rnaseq,
            "demo_tcga",
            {
                "comparisons": [{**COMPARISON, "column": "tisue"}, {**COMPARISON, "name": "b", "test": "tumour"}],
                "genes_of_interest": ["GPX4", "gpx4"],
            },
        )
    message = str(error.value)
    assert "'tisue'" in message and "test level 'tumour' does not occur" in message
    assert "cohort demo_tcga: survival.genes_of_interest 'gpx4' is not measured; did you mean GPX4?" in message


def test_unmeasured_gene_of_interest(demo_rnaseq, demo_array):
    with pytest.raises(
        ConfigError, match=r"survival\.genes_of_interest 'SLC7A1l' is not measured; did you mean .*SLC7A11\?"
    ):
        check_cohort(demo_rnaseq, "demo_tcga", {"genes_of_interest": ["SLC7A1l"]})
    with pytest.raises(ConfigError, match=r"survival\.genes_of_interest 'ZZZ_NOT_A_GENE' is not measured$"):
        check_cohort(demo_rnaseq, "demo_tcga", {"genes_of_interest": ["ZZZ_NOT_A_GENE"]})
    # an array platform may lack a gene: a note, not an error
    record = check_cohort(demo_array, "demo_geo", {"genes_of_interest": ["ZZZ_NOT_A_GENE"]})
    assert record["notes"] == ["cohort demo_geo: survival.genes_of_interest 'ZZZ_NOT_A_GENE' is not measured"]
