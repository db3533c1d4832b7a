# TEMPORARY (rule provisional_scores): a few gene-mean scores in the signature stage's output format, so the
# survival stage runs before the signatures branch is merged. Delete with the rule when the real one arrives.
import sys

sys.stderr = open(snakemake.log[0], "w")
sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad  # noqa: E402
import pandas as pd  # noqa: E402

from ferrostem.files import atomic_write  # noqa: E402
from ferrostem.models import log2_expression  # noqa: E402
from ferrostem.runtime import script_logging  # noqa: E402

SETS = {  # score: (category, genes)
    "provisional_ferroptosis_suppressors": ("ferroptosis", ["GPX4", "SLC7A11", "AIFM2", "SLC3A2", "NFE2L2", "FTH1", "GCH1", "NQO1"]),
    "provisional_ferroptosis_drivers": ("ferroptosis", ["ACSL4", "LPCAT3", "ALOX15", "NCOA4", "TFRC"]),
    "provisional_stemness_core": ("stemness", ["POU5F1", "NANOG", "SOX2", "LIN28B", "SALL4", "DNMT3B", "ZFP42", "TDGF1"]),
    "provisional_cytolytic": ("immune response", ["GZMA", "PRF1"]),
    "provisional_mcp__T_cells": ("immune cell", ["CD3E", "CD3D", "CD3G", "CD28", "CD2"]),
    "provisional_mcp__CD8_T_cells": ("immune cell", ["CD8A", "CD8B"]),
    "provisional_mcp__Cytotoxic_lymphocytes": ("immune cell", ["GZMH", "KLRD1", "NKG7", "GNLY", "PRF1"]),
    "provisional_mcp__B_lineage": ("immune cell", ["CD19", "CD79A", "MS4A1"]),
    "provisional_mcp__Monocytic_lineage": ("immune cell", ["CD14", "CD68", "CSF1R"]),
    "provisional_mcp__Fibroblasts": ("immune cell", ["COL1A1", "COL1A2", "COL3A1", "DCN", "LUM", "FAP"]),
    "provisional_checkpoints": ("checkpoint", ["CD274", "PDCD1", "CTLA4", "LAG3", "TIGIT"]),
}

log = script_logging()
adata = ad.read_h5ad(snakemake.input[0])
scores, info = {}, []
for score, (category, genes) in SETS.items():
    present = [g for g in genes if g in adata.var_names]
    if not present:
        log.warning("%s: none of its genes measured; not scored", score)
        continue
    scores[score] = log2_expression(adata, present).mean(axis=1)
    info.append({"score": score, "signature_id": score.split("__")[0], "name": score.replace("_", " "),
                 "category": category, "method": "provisional gene mean (log2)", "direction": "higher = more",
                 "citation": "provisional ferrostem placeholder until the signature stage is merged"})
with atomic_write(snakemake.output.scores) as handle:
    pd.DataFrame(scores).to_csv(handle, sep="\t", index_label="sample_id")
with atomic_write(snakemake.output.info) as handle:
    pd.DataFrame(info).to_csv(handle, sep="\t", index=False)
