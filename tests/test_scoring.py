"""Scoring methods against references: R GSVA ssGSEA, TCGAbiolinks' mRNAsi formula, hand-computed cases."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ferrostem.scoring import (
    ESTIMATE_PURITY,
    METHODS,
    RankedExpression,
    ScaleError,
    estimate,
    geometric_mean,
    mean_log,
    mean_z,
    mrnasi,
    pca1,
    score_signature,
    ssgsea,
    weighted_sum,
    weighted_sum_hk,
)
from ferrostem.signatures import Signature, read_pcbc_weights

DATA = Path(__file__).parent / "data"


def _signature(method: str, **fields) -> Signature:
    base = {
        "id": "test_sig",
        "name": "test",
        "category": "ferroptosis",
        "status": "VERIFIED",
        "method": method,
        "input_scale": METHODS[method].input_scale,
        "direction": "higher = more",
        "citation": {"text": "test"},
    }
    return Signature(**(base | fields))


@pytest.fixture(scope="module")
def gsva_fixture() -> tuple[pd.DataFrame, dict[str, list[str]], pd.DataFrame, pd.DataFrame]:
    expr = pd.read_csv(DATA / "ssgsea_input.tsv", sep="\t", index_col=0).T
    sets = {}
    for line in (DATA / "ssgsea_sets.gmt").read_text().splitlines():
        name, _, *genes = line.split("\t")
        sets[name] = genes
    raw = pd.read_csv(DATA / "ssgsea_gsva_raw.tsv", sep="\t", index_col=0).T
    normalised = pd.read_csv(DATA / "ssgsea_gsva_normalised.tsv", sep="\t", index_col=0).T
    return expr, sets, raw, normalised


def test_ssgsea_matches_r_gsva(gsva_fixture) -> None:
    expr, sets, raw_r, norm_r = gsva_fixture
    raw = ssgsea(expr, sets, normalise=False)
    norm = ssgsea(expr, sets, normalise=True)
    for name in sets:
        assert stats.spearmanr(norm[name], norm_r[name])[0] >= 0.99, name
        assert stats.spearmanr(raw[name], raw_r[name])[0] >= 0.99, name
    np.testing.assert_allclose(raw.to_numpy(), raw_r[raw.columns].to_numpy(), rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(norm.to_numpy(), norm_r[norm.columns].to_numpy(), rtol=1e-7, atol=1e-9)


def test_unnormalised_ssgsea_is_sample_independent(gsva_fixture) -> None:
    expr, sets, _, _ = gsva_fixture
    subset = expr.iloc[:5]
    pd.testing.assert_frame_equal(ssgsea(subset, sets, normalise=False), ssgsea(expr, sets, normalise=False).iloc[:5])
    assert not np.allclose(ssgsea(subset, sets).to_numpy(), ssgsea(expr, sets).iloc[:5].to_numpy())


def _explicit_walk(values: np.ndarray, members: set[int], alpha: float = 0.25) -> float:
    """The running sum written out step by step (Barbie 2009), as a reference for the closed form."""
    ranks = stats.rankdata(values)
    order = np.argsort(-ranks, kind="stable")
    weight_total = sum(ranks[i] ** alpha for i in members)
    n_out = len(values) - len(members)
    f_in = f_out = total = 0.0
    for i in order:
        if i in members:
            f_in += ranks[i] ** alpha / weight_total
        else:
            f_out += 1 / n_out
        total += f_in - f_out
    return total


def test_ssgsea_hand_computed() -> None:
    expr = pd.DataFrame([[4.0, 3.0, 2.0, 1.0]], columns=list("ABCD"), index=["s1"])
    # ranks A=4, C=2; walk: 0.5432, 0.0432, 0.5, 0 -> 1.0864
    w_a, w_c = 4**0.25, 2**0.25
    expected = (w_a / (w_a + w_c)) + (w_a / (w_a + w_c) - 0.5) + (1 - 0.5) + 0.0
    score = ssgsea(expr, {"set": ["A", "C"]}, normalise=False).loc["s1", "set"]
    assert score == pytest.approx(expected)
    rng = np.random.default_rng(1)
    values = rng.normal(size=(3, 50))
    frame = pd.DataFrame(values, columns=[f"g{i}" for i in range(50)])
    members = {3, 7, 11, 20, 42}
    got = ssgsea(frame, {"s": [f"g{i}" for i in members]}, normalise=False)["s"]
    for row in range(3):
        assert got.iloc[row] == pytest.approx(_explicit_walk(values[row], members))


def test_estimate_equals_unnormalised_ssgsea_and_purity_formula(gsva_fixture) -> None:
    expr, sets, raw_r, _ = gsva_fixture
    result = estimate(expr, sets["set_e"], sets["set_f"])
    # ESTIMATE's walk is ssGSEA's (10000 * rank / N scaling cancels): R GSVA's un-normalised scores are the
    # reference. GSVA truncates tied average ranks to integers and ESTIMATE does not, so samples with tied
    # values (the fixture is rounded to 4 decimals) may differ slightly.
    untied = ~expr.apply(lambda row: row.duplicated().any(), axis=1)
    assert untied.sum() >= 10
    np.testing.assert_allclose(result.loc[untied, "stromal"], raw_r.loc[untied, "set_e"], rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(result.loc[untied, "immune"], raw_r.loc[untied, "set_f"], rtol=1e-7, atol=1e-6)
    np.testing.assert_allclose(result["estimate"], raw_r["set_e"] + raw_r["set_f"], rtol=1e-3)
    a, b = ESTIMATE_PURITY
    assert np.cos(a + b * 0.0) == pytest.approx(0.8225094, abs=1e-6)  # purity at ESTIMATE score 0
    np.testing.assert_allclose(result["purity"], np.cos(0.6049872018 + 0.0001467884 * result["estimate"]))


def test_mean_z_mean_log_and_weighted_sums_hand_computed() -> None:
    expr = pd.DataFrame(
        {"A": [1.0, 2.0, 3.0], "B": [2.0, 4.0, 6.0], "C": [5.0, 5.0, 5.0], "H": [1.0, 1.0, 2.0]},
        index=["s1", "s2", "s3"],
    )
    np.testing.assert_allclose(mean_z(expr, ["A", "B"]), [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(mean_z(expr, ["A", "C"]), [-1.0, 0.0, 1.0])  # constant C carries no information
    np.testing.assert_allclose(mean_log(expr, ["A", "B"]), [1.5, 3.0, 4.5])
    np.testing.assert_allclose(weighted_sum(expr, {"A": 0.5, "B": -0.25}), [0.0, 0.0, 0.0])
    np.testing.assert_allclose(weighted_sum(expr, {"A": 0.1}, exponentiate=True), np.exp([0.1, 0.2, 0.3]))
    # GEP: sum w (x - mean(housekeeping)); housekeeping = H
    np.testing.assert_allclose(
        weighted_sum_hk(expr, {"A": 2.0, "B": 1.0}, ["H"]), [2 * 0 + 1 * 1, 2 * 1 + 1 * 3, 2 * 1 + 1 * 4]
    )


def test_geometric_mean_cytolytic_activity_hand_computed() -> None:
    tpm = pd.DataFrame({"GZMA": [1.0, 99.99], "PRF1": [3.99, 0.99]}, index=["s1", "s2"])
    np.testing.assert_allclose(geometric_mean(tpm, ["GZMA", "PRF1"]), [np.sqrt(1.01 * 4.0), np.sqrt(100.0 * 1.0)])


def test_pca1_matches_svd_reference_and_sign_follows_loadings() -> None:
    rng = np.random.default_rng(7)
    latent = rng.normal(size=40)
    expr = pd.DataFrame({f"g{i}": latent * (1 + i / 5) + rng.normal(scale=0.3, size=40) for i in range(5)})
    score = pca1(expr, list(expr.columns))
    z = (expr - expr.mean()) / expr.std(ddof=1)
    reference = np.linalg.eigh(np.cov(z.to_numpy().T))[1][:, -1]  # eigenvector of the largest eigenvalue
    assert abs(stats.pearsonr(score, z.to_numpy() @ reference)[0]) == pytest.approx(1.0)
    assert stats.pearsonr(score, latent)[0] > 0.95  # positive: the genes all rise with the latent factor
    flipped = pca1(-expr, list(expr.columns))
    assert stats.pearsonr(flipped, latent)[0] < -0.95


def test_mrnasi_matches_tcgabiolinks_formula_in_r(shared_reference: Path) -> None:
    rdata = pytest.importorskip("rdata")
    data = rdata.conversion.convert(rdata.parser.parse_file(shared_reference / "tcga" / "TCGAbiolinks_dataBRCA.rda"))
    frame = data["dataBRCA"]
    symbols = frame.index.str.replace(r"\|.*$", "", regex=True)
    keep = (symbols != "?") & ~pd.Index(symbols).duplicated()  # as the R fixture script
    expr = frame[keep]
    expr.index = symbols[keep]
    weights = read_pcbc_weights(shared_reference / "stemness" / "SC_PCBC_stemSig.rda")
    assert len(weights) == 12956
    result = mrnasi(expr.T, weights)
    reference = pd.read_csv(DATA / "mrnasi_dataBRCA_R.tsv", sep="\t", index_col=0)
    np.testing.assert_allclose(result.loc[reference.index, "spearman"], reference["spearman"], atol=1e-10)
    np.testing.assert_allclose(result.loc[reference.index, "minmax"], reference["minmax"], atol=1e-10)
    # Spearman is invariant to monotone per-sample transforms: log2(x+1) gives the same index
    logged = mrnasi(np.log2(expr.T + 1), weights)
    np.testing.assert_allclose(logged["spearman"], result["spearman"], atol=1e-12)


def test_scale_is_checked_and_errors_name_gene_and_sample() -> None:
    expr = pd.DataFrame({"GZMA": [10.0, 2000.0], "PRF1": [5.0, 1.0]}, index=["s1", "s2"])
    cyt = _signature("geometric_mean", sets={"": ("GZMA", "PRF1")})
    with pytest.raises(ScaleError, match="needs linear"):
        score_signature(np.log2(expr + 1), cyt, scale="log2")
    mean_sig = _signature("mean_log", sets={"": ("GZMA", "PRF1")})
    with pytest.raises(ScaleError, match=r"sample s2 gene GZMA .*looks linear"):
        score_signature(expr, mean_sig, scale="log2")
    with pytest.raises(ScaleError, match="looks log-transformed"):
        score_signature(np.log2(expr + 1) - 5, cyt, scale="linear")
    broken = expr.copy()
    broken.loc["s1", "PRF1"] = np.nan
    with pytest.raises(ScaleError, match="sample s1 gene PRF1"):
        score_signature(broken, cyt, scale="linear")
    assert score_signature(expr, cyt, scale="linear").columns.tolist() == ["test_sig"]


def test_multi_part_columns_and_ranked_cache(gsva_fixture) -> None:
    expr, sets, raw_r, _ = gsva_fixture
    sig = _signature("ssgsea_raw", sets={"a": tuple(sets["set_c"]), "b": tuple(sets["set_d"])})
    ranked = RankedExpression.from_expression(expr)
    result = score_signature(expr, sig, scale="log2", ranked=ranked)
    assert result.columns.tolist() == ["test_sig__a", "test_sig__b"]
    np.testing.assert_allclose(result["test_sig__b"], raw_r["set_d"], rtol=1e-7, atol=1e-6)
    diff = score_signature(
        expr,
        _signature(
            "ssgsea_diff",
            sets={"p": tuple(sets["set_c"]), "n": tuple(sets["set_d"])},
            params={"positive": "p", "negative": "n"},
        ),
        scale="log2",
    )
    both = ssgsea(expr, {"p": sets["set_c"], "n": sets["set_d"]})  # normalised together, as FPS calls gsva once
    np.testing.assert_allclose(diff["test_sig"], both["p"] - both["n"])


def test_one_scale_error_for_de_harmonisation_and_scoring() -> None:
    from ferrostem import de, errors, scales, scoring
    from ferrostem.scoring import score_many

    assert de.ScaleError is scoring.ScaleError is scales.ScaleError is errors.ScaleError
    assert issubclass(errors.ScaleError, errors.CohortError)
    with pytest.raises(errors.ScaleError, match="no finite value"):
        scales.looks_linear_scale(np.array([np.nan, np.inf]))
    expr = pd.DataFrame({"GZMA": [10.0, 2000.0], "PRF1": [5.0, 1.0]}, index=["s1", "s2"])
    scores, unscored = score_many(expr, None, [_signature("mean_log", sets={"": ("GZMA", "PRF1")})])
    assert scores.empty and "looks linear" in unscored["test_sig"]  # a wrong scale skips the signature only


def test_signature_definitions_that_cannot_work_are_input_errors_naming_the_signature() -> None:
    from ferrostem.errors import ConfigError, InputFormatError
    from ferrostem.scoring import score_many

    expr = pd.DataFrame({"A": [1.0, 2.0, 3.0], "B": [2.0, 1.0, 0.5]}, index=["s1", "s2", "s3"])
    unknown = dataclasses.replace(_signature("mean_log", sets={"": ("A", "B")}), method="no_such_method")
    with pytest.raises(InputFormatError, match="signature test_sig: unknown scoring method 'no_such_method'"):
        score_signature(expr, unknown, scale="log2")
    with pytest.raises(InputFormatError, match="signature test_sig: unknown scoring method"):
        score_many(expr, None, [unknown])
    diff = _signature("ssgsea_diff", sets={"p": ("A",), "n": ("B",)}, params={"positive": "p", "negative": "x"})
    with pytest.raises(InputFormatError, match=r"signature test_sig: params positive/negative .*'p' and 'x'"):
        score_signature(expr, diff, scale="log2")
    twice = _signature("mean_log", sets={"": ("A", "B")})
    with pytest.raises(ConfigError, match=r"score columns \['test_sig'\] are given by two signatures"):
        score_many(expr, None, [twice, twice])


def test_truncated_ranks_share_the_decreasing_order_of_the_average_ranks() -> None:
    # GSVA's integer ranks reuse the positions of the average ranks (score_many ranks once): with many ties,
    # the positions must be those of a stable decreasing sort of the floored ranks, computed from scratch
    rng = np.random.default_rng(11)
    values = rng.integers(0, 6, size=(7, 40)).astype(np.float32)  # heavy ties, float32 as the cohort layers
    expr = pd.DataFrame(values, index=[f"s{i}" for i in range(7)], columns=[f"g{j}" for j in range(40)])
    average = RankedExpression.from_expression(expr, truncate=False)
    truncated = RankedExpression.from_expression(expr)
    floored = np.floor(stats.rankdata(values.astype(float), axis=1, method="average"))
    np.testing.assert_array_equal(truncated.ranks, floored)
    np.testing.assert_array_equal(average.ranks, stats.rankdata(values.astype(float), axis=1, method="average"))
    for ranked, ranks in ((truncated, floored), (average, average.ranks)):
        order = np.argsort(-ranks, axis=1, kind="stable")
        expected = np.empty_like(order)
        expected[np.arange(7)[:, None], order] = np.arange(40)[None, :]
        np.testing.assert_array_equal(ranked.positions, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ranks_and_positions_from_one_sort_equal_rankdata_and_rs_order(dtype) -> None:
    from ferrostem.scoring import _ranks_and_positions

    rng = np.random.default_rng(5)
    values = np.round(rng.normal(0, 2, size=(11, 300)), 1).astype(dtype)  # ties, negatives, 0.0 and -0.0
    values[3, :10] = -0.0
    values[4] = 1.5  # one row all tied
    ranks, positions = _ranks_and_positions(values, rows_per_block=4)  # blocks that do not divide the rows
    expected_ranks = stats.rankdata(values.astype(float), axis=1, method="average")
    np.testing.assert_array_equal(ranks, expected_ranks)
    order = np.argsort(-expected_ranks, axis=1, kind="stable")
    expected = np.empty_like(order)
    expected[np.arange(11)[:, None], order] = np.arange(300)[None, :]
    np.testing.assert_array_equal(positions, expected)


def test_ranked_expression_with_nan_keeps_scipys_ranks() -> None:
    values = np.array([[1.0, np.nan, 2.0], [3.0, 1.0, 1.0]])
    ranked = RankedExpression.from_expression(pd.DataFrame(values, columns=list("abc")), truncate=False)
    np.testing.assert_array_equal(ranked.ranks, stats.rankdata(values, axis=1, method="average"))
