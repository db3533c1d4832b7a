"""The local rules (download_cohort, report, cohort_report) run as fresh Python processes on the submitting node, once
per cohort: what their modules import is paid each time (docs/performance.md). These tests keep the heavy packages
out of the modules that do not use them; each import runs in a clean interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ["anndata", "matplotlib", "pandas", "sklearn", "lifelines", "scipy.stats"]


def modules_after(code: str) -> set[str]:
    """The heavy packages in sys.modules after running `code` in a new interpreter with this checkout's src/."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        # the report rule reads section JSONs and renders templates
        ("import ferrostem.report", {"matplotlib", "pandas", "anndata"}),
        # download_cohort fetches and verifies files; only harmonise builds an AnnData. The Snakefile's parse reads
        # download.settings (every snakemake invocation): the source parsers' pandas is imported by the download
        ("import ferrostem.download", {"anndata", "matplotlib", "pandas"}),
        ("import ferrostem.sources.urls", set(HEAVY)),
        ("import ferrostem.harmonise", {"anndata", "matplotlib"}),
    ],
)
def test_local_rule_modules_import_no_heavy_package(code: str, absent: set[str]) -> None:
    assert not modules_after(code) & absent


def test_pca_coordinates_needs_no_scikit_learn() -> None:
    code = (
        "import numpy as np, pandas as pd\n"
        "from ferrostem.plots import pca_coordinates\n"
        "pca_coordinates(pd.DataFrame(np.random.default_rng(0).normal(size=(6, 40))), n_top_genes=20)"
    )
    assert "sklearn" not in modules_after(code)


def test_pca_coordinates_is_scikit_learns_full_svd_pca() -> None:
    """Same coordinates and variance ratios as sklearn's PCA(svd_solver="full") (its sign convention: each
    component's largest loading is positive)."""
    import numpy as np
    import pandas as pd
    from sklearn.decomposition import PCA

    from ferrostem.plots import pca_coordinates

    rng = np.random.default_rng(1)
    for n_samples, n_genes, n_top in [(30, 300, 200), (5, 50, 2000), (3, 10, 2000)]:
        values = pd.DataFrame(rng.normal(size=(n_samples, n_genes)) * rng.gamma(2, size=n_genes))
        coordinates, ratios = pca_coordinates(values, n_top)
        matrix = values.to_numpy()
        top = np.argsort(matrix.var(axis=0))[::-1][: min(n_top, n_genes)]
        reference = PCA(n_components=min(10, n_samples - 1, len(top)), svd_solver="full").fit(matrix[:, top])
        np.testing.assert_allclose(coordinates.to_numpy(), reference.transform(matrix[:, top])[:, :2], atol=1e-10)
        np.testing.assert_allclose(ratios, reference.explained_variance_ratio_, atol=1e-12)
