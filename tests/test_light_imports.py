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
HEAVY = ["anndata", "matplotlib", "pandas", "sklearn", "lifelines", "scipy.stats", "jsonschema"]


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


def test_snakefile_parse_imports_no_scipy_stats() -> None:
    """Every snakemake invocation (and every job of a cluster run) parses the Snakefile, which imports these
    modules for their settings and resource plans: none of it is statistics (scipy.stats, about 0.5 s)."""
    code = (
        "import ferrostem.config, ferrostem.download, ferrostem.enrichment, ferrostem.endpoints, ferrostem.resources\n"
        "import ferrostem.signatures, ferrostem.sources.urls, ferrostem.survival, ferrostem.risk_models"
    )
    assert not modules_after(code) & {"scipy.stats", "anndata", "matplotlib", "sklearn", "lifelines"}


def test_limma_without_the_rest_of_inmoose() -> None:
    """The array DE (de.run_limma) imports inmoose.limma without inmoose's __init__ (edgepy, pycombat, deseq2,
    cohort QC: seaborn and scikit-learn); inmoose as a whole still works afterwards in the same process."""
    code = (
        "import sys\n"
        "from ferrostem.runtime import import_submodule\n"
        "limma = import_submodule('inmoose.limma')\n"
        "light = [m for m in ('seaborn', 'sklearn', 'inmoose.edgepy', 'inmoose.pycombat') if m in sys.modules]\n"
        "import inmoose\n"
        "from inmoose.limma import lmFit\n"
        "assert lmFit is limma.lmFit and inmoose.limma is limma\n"
        "assert inmoose.__version__ and inmoose.edgepy.DGEList  # the package's __init__ ran on first use\n"
        "print(__import__('json').dumps(light))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_array_de_loads_no_seaborn_or_scikit_learn() -> None:
    code = (
        "import numpy as np, pandas as pd\n"
        "from ferrostem.de import Comparison, prepare_design, run_limma\n"
        "samples = [f's{i}' for i in range(8)]\n"
        "obs = pd.DataFrame({'condition': ['a'] * 4 + ['b'] * 4}, index=samples)\n"
        "plan = prepare_design(obs, Comparison('b_vs_a', 'condition', 'b', 'a'))\n"
        "values = pd.DataFrame(np.random.default_rng(0).normal(7, 1, (8, 50)), index=samples)\n"
        "values.columns = [f'g{i}' for i in range(50)]\n"
        "run_limma(values, plan)\n"
        "import sys\n"
        "assert 'inmoose.limma' in sys.modules and 'seaborn' not in sys.modules"
    )
    assert "sklearn" not in modules_after(code)


SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
OPTIONAL = [
    *["jsonschema", "polars", "gseapy", "scanpy", "sklearn", "sksurv", "lifelines", "pydeseq2", "inmoose"],
    *["scipy.stats", "scipy.optimize", "matplotlib", "anndata", "seaborn", "statsmodels", "requests"],
]


def script_imports(script: str) -> set[str]:
    """The packages of OPTIONAL in sys.modules after a job script's top-level imports (run as its job would run
    them, with a stand-in snakemake object whose log goes to /dev/null), in a new interpreter."""
    probe = (
        "import __main__, ast, json, sys, types\n"
        f"path = {str(SCRIPTS / script)!r}\n"
        "__main__.snakemake = types.SimpleNamespace(log=[__import__('os').devnull])\n"
        f"sys.path.insert(0, {str(SCRIPTS)!r})\n"
        "tree = ast.parse(open(path).read())\n"
        "body = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]\n"
        "exec(compile(ast.Module(body=body, type_ignores=[]), path, 'exec'), {'__name__': '__main__'})\n"
        "sys.stderr = sys.__stderr__\n"
        f"print(json.dumps([m for m in {OPTIONAL!r} if m in sys.modules]))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    ("script", "absent"),
    [
        # jsonschema only where a config block is validated against the schema (config.with_schema_defaults);
        # the download client (polars, requests via harmonise) only when a locked resource file is to be verified;
        # each analysis library only in the branch that uses it
        ("check_cohort.py", {"jsonschema", "polars", "sklearn", "lifelines", "scipy.stats", "matplotlib"}),
        ("cohort_report.py", {"jsonschema", "polars", "sklearn", "sksurv", "gseapy", "pydeseq2", "requests"}),
        # the DE script: the engine's library (PyDESeq2 or inmoose's limma) and scipy.stats with it, in its branch
        ("de.py", {"jsonschema", "pydeseq2", "inmoose", "sklearn", "scipy.stats", "lifelines", "sksurv", "gseapy"}),
        ("deconvolution.py", {"jsonschema", "polars", "sklearn", "lifelines", "sksurv", "gseapy", "pydeseq2"}),
        ("enrichment.py", {"jsonschema", "polars", "gseapy", "anndata", "lifelines", "sksurv", "pydeseq2"}),
        ("signatures.py", {"jsonschema", "polars", "sklearn", "lifelines", "sksurv", "gseapy", "pydeseq2"}),
        ("genes_of_interest.py", {"polars", "sklearn", "sksurv", "lifelines", "gseapy", "pydeseq2"}),
        ("subtypes.py", {"scanpy", "gseapy", "pydeseq2", "inmoose", "lifelines", "sklearn", "sksurv"}),
        ("survival.py", {"polars", "sksurv", "sklearn", "lifelines", "gseapy", "pydeseq2"}),
        ("clinical_models.py", {"polars", "sksurv", "sklearn", "lifelines", "gseapy", "pydeseq2"}),
        # LASSO-Cox: scikit-survival (and scipy.stats with it) where the model is fitted
        ("lasso_cox.py", {"polars", "sksurv", "sklearn", "lifelines", "scipy.stats", "matplotlib", "gseapy"}),
        ("harmonise.py", {"anndata", "scipy.stats", "matplotlib", "sklearn", "jsonschema"}),
        ("download_cohort.py", {"anndata", "scipy.stats", "matplotlib", "pandas"}),
        ("report.py", {"anndata", "scipy.stats", "matplotlib", "pandas", "requests"}),
        # the demo generator reads quanTIseq's TIL10 through ferrostem.deconvolution, whose solver is not its path
        ("demo_data.py", {"scipy.stats", "scipy.optimize", "matplotlib", "anndata", "sklearn", "jsonschema"}),
    ],
)
def test_job_scripts_import_optional_packages_only_where_used(script: str, absent: set[str]) -> None:
    assert not script_imports(script) & absent


def test_config_module_imports_no_jsonschema() -> None:
    assert "jsonschema" not in modules_after("import ferrostem.config")
