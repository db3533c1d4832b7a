"""Gene-set collections: GMT files, FerrDb V2 CSVs, WikiPathways WP4313 data nodes, MSigDB subsets.

Every reader returns plain `GeneSet`s keyed by name, so the enrichment code never cares where a set came
from. `filter_sets` restricts sets to the genes that were tested and drops sets outside the size limits,
returning a table that says which set was dropped and why (the report shows it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import ConfigError, InputFormatError

FERROPTOSIS_CORE_REGULATORS = (
    "GPX4",
    "SLC7A11",
    "SLC3A2",
    "AIFM2",
    "ACSL4",
    "LPCAT3",
    "TFRC",
    "FTH1",
    "NCOA4",
    "NFE2L2",
    "GCH1",
    "ALOX15",
)

# MSigDB C2 sets used as the stemness collection (Ben-Porath 2008, Wong 2008, Bhattacharya 2004,
# Malta 2018, Mueller 2008, Ramalho-Santos 2002, Ivanova 2002, Galie): matched by name prefix.
STEMNESS_PATTERNS = (
    r"^BENPORATH_(ES_1|ES_2|NANOG_TARGETS|OCT4_TARGETS|SOX2_TARGETS|NOS_TARGETS|PRC2_TARGETS|"
    r"MYC_TARGETS_WITH_EBOX|ES_CORE_NINE|ES_CORE_NINE_CORRELATED)$",
    r"^WONG_(EMBRYONIC_STEM_CELL_CORE|ADULT_TISSUE_STEM_MODULE)$",
    r"^BHATTACHARYA_EMBRYONIC_STEM_CELL$",
    r"^MALTA_CURATED_STEMNESS_MARKERS$",
    r"^MUELLER_PLURINET$",
    r"^RAMALHO_STEMNESS_(UP|DN)$",
    r"^IVANOVA_HEMATOPOIESIS_STEM_CELL_LONG_TERM$",
    r"^GALIE_TUMOR_STEMNESS_GENES$",
)

# FerrDb V2 spells its Confidence column inconsistently; these are the spellings seen in the
# 'early preview up to 2023-12-31' release (driver/suppressor/marker.csv).
CONFIDENCE_SPELLINGS = {
    "validated": "Validated",
    "validate": "Validated",
    "deduced": "Deduced",
    "deduecd": "Deduced",
    "screened": "Screened",
    "predicted": "Predicted",
}
FERRDB_CATEGORIES = ("driver", "suppressor", "marker")


@dataclass(frozen=True)
class GeneSet:
    name: str
    genes: tuple[str, ...]
    description: str = ""
    collection: str = ""


@dataclass
class FerrdbReport:
    """How many FerrDb rows each filter removed (shown in the enrichment section)."""

    file: str
    category: str
    rows: int
    non_human: int
    not_validated: int
    no_hgnc_symbol: int
    duplicate_symbols: int
    genes: int
    confidence_values: dict[str, int] = field(default_factory=dict)
    unknown_confidence: list[str] = field(default_factory=list)


def unique_genes(genes: Iterable[str]) -> tuple[str, ...]:
    """Stripped, non-empty symbols, each once, in first-seen order."""
    return tuple(dict.fromkeys(g.strip() for g in genes if g and g.strip()))


def read_gmt(path: str | os.PathLike[str], collection: str = "") -> dict[str, GeneSet]:
    """GMT: one set per line, `name<TAB>description<TAB>gene...`; duplicate genes within a set are dropped."""
    path = Path(path)
    sets: dict[str, GeneSet] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) < 3 or not fields[0].strip():
                raise InputFormatError(
                    f"{path}:{number}: a GMT line needs name, description and at least one gene "
                    f"separated by tabs; got {len(fields)} field(s)"
                )
            name = fields[0].strip()
            if name in sets:
                raise InputFormatError(f"{path}:{number}: gene set {name!r} appears twice")
            genes = unique_genes(fields[2:])
            if not genes:
                raise InputFormatError(f"{path}:{number}: gene set {name!r} lists no genes")
            sets[name] = GeneSet(name, genes, fields[1].strip(), collection)
    if not sets:
        raise InputFormatError(f"{path}: no gene sets found (empty GMT file)")
    return sets


def normalise_confidence(value: object) -> str:
    """'Validate', 'validated' -> 'Validated'; 'Deduecd' -> 'Deduced'; unknown spellings are returned stripped."""
    text = "" if pd.isna(value) else str(value).strip()
    return CONFIDENCE_SPELLINGS.get(text.lower(), text)


def read_ferrdb(
    path: str | os.PathLike[str],
    category: str,
    *,
    organism: str = "human",
    confidence: str | Iterable[str] = "Validated",
) -> tuple[GeneSet, FerrdbReport]:
    """One FerrDb V2 table (driver/suppressor/marker.csv) -> one set of unique HGNC symbols.

    Keeps rows whose `Exp_organism` mentions `organism` (case-insensitive; 'Human, mice' counts as human),
    whose normalised `Confidence` is `confidence`, that carry an HGNC id and are not circular RNAs (this drops
    circRNAs, even those listed under their host gene's HGNC id, and lncRNA names such as 'lncAABR07025387.1').
    Symbols are stripped ('RNF113A ' -> 'RNF113A').
    FerrDb V2: Zhou N et al., Nucleic Acids Res 2023;51(D1):D571-D582, doi:10.1093/nar/gkac935.
    """
    path = Path(path)
    if category not in FERRDB_CATEGORIES:
        raise ConfigError(f"FerrDb category {category!r} is not one of {', '.join(FERRDB_CATEGORIES)}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputFormatError(f"{path}: not a readable FerrDb CSV ({error})") from error
    symbol_column = next((c for c in ("Symbol", "Symbol_or_reported_abbr") if c in table.columns), None)
    missing = [c for c in ("Exp_organism", "Confidence", "HGNC_ID") if c not in table.columns]
    if symbol_column is None or missing:
        raise InputFormatError(
            f"{path}: FerrDb V2 columns missing: {missing + ([] if symbol_column else ['Symbol'])}; "
            f"found {list(table.columns)}"
        )
    rows = len(table)
    normalised = table["Confidence"].map(normalise_confidence)
    unknown = sorted(set(normalised) - set(CONFIDENCE_SPELLINGS.values()))
    human = table["Exp_organism"].str.contains(organism, case=False, regex=False)
    levels = [confidence] if isinstance(confidence, str) else list(confidence)
    wanted = {normalise_confidence(level) for level in levels}
    validated = normalised.isin(wanted)
    symbols = table[symbol_column].str.strip()
    has_hgnc = table["HGNC_ID"].str.strip().str.startswith("HGNC:") & symbols.ne("") & symbols.ne("_NA_")
    type_column = next((c for c in table.columns if c.startswith("Gene_type")), None)
    if type_column is not None:  # a circRNA can carry its host gene's HGNC id ('circ-TTBK2', HGNC:19141)
        has_hgnc &= ~table[type_column].str.contains("circ", case=False, regex=False)
    kept = symbols[human & validated & has_hgnc]
    genes = unique_genes(kept)
    report = FerrdbReport(
        file=str(path),
        category=category,
        rows=rows,
        non_human=int((~human).sum()),
        not_validated=int((human & ~validated).sum()),
        no_hgnc_symbol=int((human & validated & ~has_hgnc).sum()),
        duplicate_symbols=int(len(kept) - len(genes)),
        genes=len(genes),
        confidence_values={str(k): int(v) for k, v in normalised.value_counts().items()},
        unknown_confidence=unknown,
    )
    label = "/".join(sorted(wanted))
    if not genes:
        raise InputFormatError(f"{path}: no {organism} {label} genes with an HGNC symbol among {rows} rows")
    description = (
        f"FerrDb V2 {category}s, {organism}, {label}, unique HGNC symbols "
        "(Zhou N et al. Nucleic Acids Res 2023, doi:10.1093/nar/gkac935)"
    )
    return GeneSet(f"FERRDB_V2_{category.upper()}", genes, description, "ferrdb_v2"), report


def read_wp4313_datanodes(path: str | os.PathLike[str]) -> GeneSet:
    """WikiPathways WP4313 'Ferroptosis' data nodes -> the unique HGNC symbols of its GeneProduct/Protein nodes.

    The HGNC column holds 'hgnc.symbol:GPX4'; node labels such as 'NOX2' or '15-LO' are ignored in favour of
    it (they map to CYBB and ALOX15). WikiPathways content is CC0.
    """
    path = Path(path)
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if not {"Type", "HGNC"} <= set(table.columns):
        raise InputFormatError(
            f"{path}: WikiPathways datanodes table needs columns Type and HGNC; got {list(table.columns)}"
        )
    genes_rows = table[table["Type"].isin(["GeneProduct", "Protein", "Rna"])]
    symbols = []
    for cell in genes_rows["HGNC"]:
        for item in cell.split(";"):
            item = item.strip()
            if item.startswith("hgnc.symbol:"):
                symbols.append(item.split(":", 1)[1])
    genes = unique_genes(symbols)
    if not genes:
        raise InputFormatError(f"{path}: no hgnc.symbol entries among {len(genes_rows)} gene nodes")
    return GeneSet(
        "WP4313_FERROPTOSIS",
        genes,
        "WikiPathways WP4313 Ferroptosis (Homo sapiens), CC0; HGNC symbols of GeneProduct/Protein nodes",
        "wikipathways",
    )


def stemness_subset(sets: Mapping[str, GeneSet], patterns: Iterable[str] = STEMNESS_PATTERNS) -> dict[str, GeneSet]:
    """The stemness sets of an MSigDB C2 GMT, selected by name (see STEMNESS_PATTERNS)."""
    compiled = [re.compile(p) for p in patterns]
    chosen = {name: s for name, s in sets.items() if any(c.match(name) for c in compiled)}
    if not chosen:
        raise InputFormatError(
            "no stemness sets (BENPORATH_*, WONG_*, BHATTACHARYA_*, MALTA_*, MUELLER_PLURINET) "
            "found: is this the MSigDB C2 GMT?"
        )
    return chosen


def filter_sets(
    sets: Mapping[str, GeneSet], universe: Iterable[str], min_size: int, max_size: int
) -> tuple[dict[str, GeneSet], pd.DataFrame]:
    """Restrict each set to `universe` (the tested genes) and keep those with min_size <= size <= max_size.

    Returns the kept sets (restricted) and one row per set with its sizes, whether it was kept and why not.
    """
    if min_size < 1 or max_size < min_size:
        raise ConfigError(f"enrichment set sizes: need 1 <= min_size <= max_size, got {min_size}, {max_size}")
    tested = set(universe)
    kept: dict[str, GeneSet] = {}
    rows = []
    for name, gene_set in sets.items():
        present = tuple(g for g in gene_set.genes if g in tested)
        reason = ""
        if not present:
            reason = "no gene of the set was tested"
        elif len(present) < min_size:
            reason = f"{len(present)} tested genes < min_size {min_size}"
        elif len(present) > max_size:
            reason = f"{len(present)} tested genes > max_size {max_size}"
        else:
            kept[name] = GeneSet(name, present, gene_set.description, gene_set.collection)
        rows.append(
            {
                "collection": gene_set.collection,
                "set": name,
                "genes": len(gene_set.genes),
                "tested_genes": len(present),
                "kept": not reason,
                "reason": reason,
            }
        )
    return kept, pd.DataFrame(rows, columns=["collection", "set", "genes", "tested_genes", "kept", "reason"])
