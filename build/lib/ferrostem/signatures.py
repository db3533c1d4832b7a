"""The signature catalogue: loading, resource-backed gene lists, symbol mapping and coverage.

The catalogue is YAML in `resources/signatures/*.yaml` (one list of entries per file, validated against
`workflow/schemas/signature.schema.yaml`). An entry gives its genes inline (`genes`, or `sets` for
multi-part signatures, `weights` for weighted scores) or names a locked resource (`resource: {id, format}`)
whose file the workflow passes in (`resource_files`). Only VERIFIED and VERIFIED-SECONDARY entries load.

Symbols: published lists use the symbols of their day (CARS, WISP1, SDPR ...) and cohorts use the symbols of
their annotation release. Both sides are mapped to current HGNC symbols with an alias table (previous symbol
-> current symbol; the curated `symbol_aliases.tsv`, optionally extended by an HGNC complete-set file) and
matched there, so a signature finds a gene whichever name the cohort carries. Per-signature `symbol_fixes`
repair known typos of one source (MCP-counter's `C` row = CAVIN2; Charoentong's `ClQA`/`ClQB`).
`map_signature` returns the signature in the cohort's gene names plus a coverage record (found / total,
remapped old -> new, missing, share of total |weight| missing); below `min_coverage` it is skipped.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .genesets import GeneSet, read_ferrdb, read_gmt, unique_genes
from .config import user_set_prefix
from .errors import ConfigError, InputFormatError

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CATALOGUE = REPO / "resources" / "signatures"
DEFAULT_SCHEMA = REPO / "workflow" / "schemas" / "signature.schema.yaml"
DEFAULT_ALIASES = DEFAULT_CATALOGUE / "symbol_aliases.tsv"
SHIPPABLE = ("VERIFIED", "VERIFIED-SECONDARY")
SINGLE = ""  # part name of a one-set signature


@dataclass(frozen=True)
class Signature:
    """One catalogue entry. `sets` maps part name -> genes ("" for a single set)."""

    id: str
    name: str
    category: str
    status: str
    method: str
    input_scale: str
    direction: str
    citation: Mapping[str, str]
    sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    weights: Mapping[str, float] | None = None
    housekeeping: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    resource: Mapping[str, Any] | None = None
    symbol_fixes: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def genes(self) -> tuple[str, ...]:
        """Every scored gene once (sets, then weights, then housekeeping), in catalogue order."""
        seen: dict[str, None] = {}
        for genes in self.sets.values():
            seen.update(dict.fromkeys(genes))
        if self.weights:
            seen.update(dict.fromkeys(self.weights))
        seen.update(dict.fromkeys(self.housekeeping))
        return tuple(seen)

    @property
    def needs_resource(self) -> bool:
        return self.resource is not None and not self.sets and not self.weights

    @property
    def citation_text(self) -> str:
        parts = [self.citation.get("text", "")]
        if self.citation.get("doi"):
            parts.append(f"doi:{self.citation['doi']}")
        if self.citation.get("pmid"):
            parts.append(f"PMID:{self.citation['pmid']}")
        if self.citation.get("url") and not self.citation.get("doi"):
            parts.append(self.citation["url"])
        return " ".join(p for p in parts if p)

    @property
    def label(self) -> str:
        """Status label shown next to the name (VERIFIED-SECONDARY entries are marked as such)."""
        suffix = " [VERIFIED-SECONDARY]" if self.status == "VERIFIED-SECONDARY" else ""
        project = " [curated by ferrostem]" if self.meta.get("curated_by_project") else ""
        return f"{self.name}{suffix}{project}"


# ---------------------------------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------------------------------


def _schema(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    with open(path or DEFAULT_SCHEMA, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def validate_entries(
    entries: Sequence[Mapping[str, Any]], source: str, schema_path: str | os.PathLike[str] | None = None
) -> None:
    """Validate raw catalogue entries against the JSON Schema; every problem is reported at once."""
    import jsonschema

    validator = jsonschema.Draft7Validator(_schema(schema_path))
    problems = []
    for number, entry in enumerate(entries):
        ident = entry.get("id", f"entry #{number + 1}") if isinstance(entry, Mapping) else f"entry #{number + 1}"
        for error in sorted(validator.iter_errors(entry), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.path) or "(entry)"
            problems.append(f"{source}: signature {ident}: {where}: {error.message}")
    if problems:
        raise InputFormatError("invalid signature catalogue entries:\n  " + "\n  ".join(problems))


def _signature_from_entry(entry: Mapping[str, Any]) -> Signature:
    if "genes" in entry:
        sets = {SINGLE: tuple(entry["genes"])}
    else:
        sets = {part: tuple(genes) for part, genes in (entry.get("sets") or {}).items()}
    fixes = {old: fix["symbol"] for old, fix in (entry.get("symbol_fixes") or {}).items()}
    known = {
        "id",
        "name",
        "category",
        "status",
        "method",
        "input_scale",
        "direction",
        "citation",
        "genes",
        "sets",
        "weights",
        "housekeeping",
        "params",
        "resource",
        "symbol_fixes",
    }
    return Signature(
        id=entry["id"],
        name=entry["name"],
        category=entry["category"],
        status=entry["status"],
        method=entry["method"],
        input_scale=entry["input_scale"],
        direction=entry["direction"],
        citation=dict(entry["citation"]),
        sets=sets,
        weights={str(k): float(v) for k, v in entry["weights"].items()} if entry.get("weights") else None,
        housekeeping=tuple(entry.get("housekeeping") or ()),
        params=dict(entry.get("params") or {}),
        resource=dict(entry["resource"]) if entry.get("resource") else None,
        symbol_fixes=fixes,
        meta={k: v for k, v in entry.items() if k not in known},
    )


def load_catalogue(
    directory: str | os.PathLike[str] = DEFAULT_CATALOGUE, *, schema_path: str | os.PathLike[str] | None = None
) -> list[Signature]:
    """Every entry of every `*.yaml` in `directory`, validated; ids are unique; UNVERIFIED entries are refused."""
    folder = Path(directory)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise InputFormatError(f"{folder}: no signature catalogue files (*.yaml)")
    signatures: list[Signature] = []
    where: dict[str, str] = {}
    for path in files:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
        entries = document.get("signatures") if isinstance(document, Mapping) else None
        if not isinstance(entries, list):
            raise InputFormatError(f"{path}: expected a top-level 'signatures:' list")
        validate_entries(entries, str(path), schema_path)
        for entry in entries:
            if entry["id"] in where:
                raise InputFormatError(f"{path}: signature id {entry['id']!r} is also defined in {where[entry['id']]}")
            where[entry["id"]] = str(path)
            signatures.append(_signature_from_entry(entry))
    return signatures


def catalogue_sets(
    folder: str | os.PathLike[str], collection: str = "catalogue"
) -> tuple[dict[str, GeneSet], list[str]]:
    """The gene lists of the signature catalogue (resources/signatures/*.yaml) as enrichment sets.

    Read through `load_catalogue`, so entries are schema-validated and published symbol
    typos are fixed (MCP-counter's `C` -> CAVIN2). A multi-part signature gives one set per part
    (`<id>_<part>`); weighted scores and lists that come from a locked resource are skipped, with a note.
    """
    sets: dict[str, GeneSet] = {}
    notes: list[str] = []
    for signature in load_catalogue(folder):
        if signature.needs_resource:
            notes.append(f"{signature.id}: genes come from resource {signature.resource['id']} (skipped)")
            continue
        if not signature.sets:
            notes.append(f"{signature.id}: a weighted score, not a gene set (skipped)")
            continue
        for part, genes in signature.sets.items():
            name = f"{signature.id}_{part}" if part else signature.id
            fixed = unique_genes(signature.symbol_fixes.get(g, g) for g in genes)
            sets[name] = GeneSet(name, fixed, signature.citation_text, collection)
    return sets, notes


def select_signatures(
    signatures: Sequence[Signature], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[Signature]:
    """Apply the config's include / exclude lists (ids); unknown ids are a config error."""
    known = {s.id for s in signatures}
    for key, ids in (("signatures.include", include), ("signatures.exclude", exclude)):
        unknown = sorted(set(ids) - known)
        if unknown:
            raise ConfigError(f"{key}: unknown signature id(s) {unknown}; known ids: {sorted(known)}")
    chosen = [s for s in signatures if not include or s.id in include]
    return [s for s in chosen if s.id not in set(exclude)]


# ---------------------------------------------------------------------------------------------------
# Resource-backed lists (files come from the resource lock; tests pass ../shared copies)
# ---------------------------------------------------------------------------------------------------


def read_pcbc_weights(path: str | os.PathLike[str]) -> dict[str, float]:
    """The mRNAsi weight vector `SC_PCBC_stemSig` from TCGAbiolinks' .rda (or a gene<TAB>weight TSV)."""
    path = Path(path)
    if path.suffix.lower() in {".rda", ".rdata"}:
        import rdata

        converted = rdata.conversion.convert(rdata.parser.parse_file(path))
        if "SC_PCBC_stemSig" not in converted:
            raise InputFormatError(f"{path}: no object SC_PCBC_stemSig (found {sorted(converted)})")
        vector = converted["SC_PCBC_stemSig"]
        names = [str(n) for n in vector.coords[vector.dims[0]].values]
        return dict(zip(names, (float(v) for v in vector.values), strict=True))
    frame = pd.read_csv(path, sep="\t", header=None, names=["gene", "weight"])
    return dict(zip(frame["gene"].astype(str), frame["weight"].astype(float), strict=True))


def read_charoentong(path: str | os.PathLike[str]) -> dict[str, tuple[str, ...]]:
    """Charoentong 2017 Table S6 (Metagene, Cell type, Immunity) -> cell type -> metagenes (blank lines skipped)."""
    frame = pd.read_csv(path, sep="\t", dtype=str, skip_blank_lines=True).dropna(subset=["Metagene", "Cell type"])
    missing = {"Metagene", "Cell type"} - set(frame.columns)
    if missing:
        raise InputFormatError(f"{path}: missing column(s) {sorted(missing)}")
    sets: dict[str, tuple[str, ...]] = {}
    for cell_type, rows in frame.groupby("Cell type", sort=False):
        sets[part_name(cell_type)] = tuple(dict.fromkeys(rows["Metagene"].str.strip()))
    return sets


def read_mcpcounter(path: str | os.PathLike[str]) -> dict[str, tuple[str, ...]]:
    """MCPcounter Signatures/genes.txt -> population -> symbols; the broken `C` row is repaired via Entrez 8436."""
    frame = pd.read_csv(path, sep="\t", dtype=str)
    symbol = frame["HUGO symbols"].str.strip()
    symbol = symbol.mask(frame["ENTREZID"].str.strip().eq("8436") & symbol.eq("C"), "CAVIN2")
    sets: dict[str, tuple[str, ...]] = {}
    for population, rows in symbol.groupby(frame["Cell population"], sort=False):
        sets[part_name(population)] = tuple(dict.fromkeys(rows))
    return sets


def resource_needs(signatures: Sequence[Signature]) -> dict[str, list[str]]:
    """The locked resources these signatures read: resource id -> ids of the signatures that need it."""
    needs: dict[str, list[str]] = {}
    for sig in signatures:
        if sig.needs_resource:
            assert sig.resource is not None
            needs.setdefault(sig.resource["id"], []).append(sig.id)
    return needs


def resolve_resources(
    signatures: Sequence[Signature],
    resource_files: Mapping[str, str | os.PathLike[str]],
    left_out: Mapping[str, str] | None = None,
) -> tuple[list[Signature], dict[str, str]]:
    """Fill in resource-backed gene lists; returns (usable signatures, {id: why not scored}).

    `left_out` maps a resource id this run does not use to the reason (`ResourcePlan.why_left_out`)."""
    ready: list[Signature] = []
    unavailable: dict[str, str] = {}
    for sig in signatures:
        if not sig.needs_resource:
            ready.append(sig)
            continue
        assert sig.resource is not None
        rid = sig.resource["id"]
        path = resource_files.get(rid)
        if not path:
            why = (left_out or {}).get(rid) or f"resource {rid} was not given to this run"
            unavailable[sig.id] = f"not scored: {why}"
            continue
        fmt = sig.resource["format"]
        if fmt == "pcbc_rda":
            ready.append(replace(sig, weights=read_pcbc_weights(path)))
        elif fmt == "gmt":
            sets = read_gmt(path)
            name = sig.resource["set"]
            if name not in sets:
                raise InputFormatError(f"{path}: gene set {name} (signature {sig.id}) not found")
            ready.append(replace(sig, sets={SINGLE: sets[name].genes}))
        elif fmt == "charoentong_tsv":
            ready.append(replace(sig, sets=read_charoentong(path)))
        elif fmt == "ferrdb_csv":  # the same filter as the enrichment sets: human, HGNC symbols, confidence
            gene_set, _ = read_ferrdb(
                path, rid.removeprefix("ferrdb_v2_"), confidence=sig.params.get("confidence", ["validated"])
            )
            ready.append(replace(sig, sets={SINGLE: gene_set.genes}))
        elif fmt == "mcpcounter_txt":
            ready.append(replace(sig, sets=read_mcpcounter(path)))
        else:  # the schema lists the formats; this guards a schema edit without a reader
            raise InputFormatError(f"signature {sig.id}: no reader for resource format {fmt!r}")
    return ready, unavailable


USER_SET_METHODS = ("ssgsea", "ssgsea_raw", "mean_z", "mean_log", "pca1")  # methods that score one gene list


def user_gmt_signatures(path: str | os.PathLike[str], *, category: str, method: str = "ssgsea") -> list[Signature]:
    """Every set of a user's GMT as a signature scored per sample like a catalogue entry.

    Ids are `user_<file stem>__<set>` made column-safe; the citation names the file, since a user's set has no
    published source we could check. `method` is one of USER_SET_METHODS (ssGSEA by default).
    """
    from .scoring import METHODS  # scoring imports this module: read its registry at call time

    if method not in USER_SET_METHODS:
        raise ConfigError(f"signatures.user_gmts: method {method!r} for {path} is not one of {list(USER_SET_METHODS)}")
    path = Path(path)
    prefix = user_set_prefix(path)
    signatures = []
    for name, gene_set in read_gmt(path, collection=prefix.rstrip("_")).items():
        signatures.append(
            Signature(
                id=f"{prefix}{part_name(name)}",
                name=f"{name} (user gene set, {path.name})",
                category=category,
                status="USER",
                method=method,
                input_scale=METHODS[method].input_scale,
                direction=f"higher = higher expression of the {len(gene_set.genes)} genes of {name}",
                citation={
                    "text": f"user gene set {name} from {path.name}"
                    + (f": {gene_set.description}" if gene_set.description else "")
                },
                sets={SINGLE: tuple(gene_set.genes)},
                meta={"user_gmt": str(path)},
            )
        )
    return signatures


def with_user_gmts(signatures: Sequence[Signature], user_gmts: Sequence[Mapping[str, Any]]) -> list[Signature]:
    """`signatures` plus every set of the configured user GMTs (signatures.user_gmts); ids must stay unique."""
    combined = list(signatures)
    for spec in user_gmts:
        combined += user_gmt_signatures(spec["gmt"], category=spec["category"], method=spec.get("method", "ssgsea"))
    ids = [s.id for s in combined]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ConfigError(
            f"signatures.user_gmts: score ids {repeated} are given twice (two GMT files with the same "
            "name, or a set name repeated after making it column-safe); rename the file or the set"
        )
    return combined


# ---------------------------------------------------------------------------------------------------
# Symbols
# ---------------------------------------------------------------------------------------------------


def part_name(text: str) -> str:
    """A column-safe part name: 'Immature  B cell' -> 'Immature_B_cell'."""
    return re.sub(r"[^0-9A-Za-z]+", "_", str(text)).strip("_")


@dataclass(frozen=True)
class AliasTable:
    """previous/alias symbol -> current HGNC symbol; ambiguous aliases (several current genes) are left out."""

    to_current: Mapping[str, str]
    sources: Mapping[str, str] = field(default_factory=dict)

    def current(self, symbol: str) -> str:
        return self.to_current.get(symbol, symbol)

    def merged(self, other: AliasTable) -> AliasTable:
        return AliasTable({**other.to_current, **self.to_current}, {**other.sources, **self.sources})


def load_alias_table(path: str | os.PathLike[str] = DEFAULT_ALIASES) -> AliasTable:
    """The curated TSV (previous_symbol, current_symbol, hgnc_id, source)."""
    mapping: dict[str, str] = {}
    sources: dict[str, str] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        rows = csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t")
        for number, row in enumerate(rows, start=2):
            old, new = (row.get("previous_symbol") or "").strip(), (row.get("current_symbol") or "").strip()
            if not old or not new:
                raise InputFormatError(f"{path}: row {number}: previous_symbol and current_symbol are required")
            if old in mapping and mapping[old] != new:
                raise InputFormatError(f"{path}: {old} maps to both {mapping[old]} and {new}")
            mapping[old] = new
            sources[old] = (row.get("source") or "").strip()
    return AliasTable(mapping, sources)


def load_hgnc_complete_set(path: str | os.PathLike[str]) -> AliasTable:
    """HGNC's hgnc_complete_set.txt (columns symbol, prev_symbol, alias_symbol; '|' separated).

    Previous symbols win over aliases; an alias that names several current genes, or that is itself a
    current symbol, is ambiguous and dropped.
    """
    frame = pd.read_csv(
        path,
        sep="\t",
        dtype=str,
        keep_default_na=False,
        usecols=lambda c: c in {"symbol", "prev_symbol", "alias_symbol", "status"},
    )
    if "symbol" not in frame.columns:
        raise InputFormatError(f"{path}: not an HGNC complete set (no 'symbol' column)")
    if "status" in frame.columns:
        frame = frame[frame["status"].str.lower().ne("entry withdrawn")]
    current = set(frame["symbol"])
    mapping: dict[str, str] = {}
    for column in ("prev_symbol", "alias_symbol"):
        if column not in frame.columns:
            continue
        candidates: dict[str, set[str]] = {}
        for symbol, names in zip(frame["symbol"], frame[column], strict=True):
            for name in filter(None, (n.strip().strip('"') for n in names.split("|"))):
                candidates.setdefault(name, set()).add(symbol)
        for name, targets in candidates.items():
            if len(targets) == 1 and name not in current and name not in mapping:
                mapping[name] = next(iter(targets))
    return AliasTable(mapping, {k: f"HGNC {Path(path).name}" for k in mapping})


def cohort_symbol_index(cohort_genes: Iterable[str], aliases: AliasTable) -> dict[str, str]:
    """current symbol -> the cohort's gene name. A name that is already current wins over an old alias of it."""
    index: dict[str, str] = {}
    for gene in cohort_genes:
        index.setdefault(gene, gene)
    for gene in cohort_genes:
        index.setdefault(aliases.current(gene), gene)
    return index


@dataclass(frozen=True)
class Coverage:
    signature_id: str
    total: int
    found: int
    remapped: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]
    weight_missing: float  # share of total |weight| on missing genes (0 when unweighted and complete)
    empty_parts: tuple[str, ...]
    scored: bool
    reason: str

    @property
    def fraction(self) -> float:
        return self.found / self.total if self.total else 0.0

    def row(self) -> dict[str, Any]:
        return {
            "signature_id": self.signature_id,
            "genes_found": self.found,
            "genes_total": self.total,
            "coverage": round(self.fraction, 4),
            "weight_missing": round(self.weight_missing, 4),
            "remapped": "; ".join(f"{old}->{new}" for old, new in self.remapped),
            "missing": "; ".join(self.missing),
            "empty_parts": "; ".join(self.empty_parts),
            "scored": self.scored,
            "reason": self.reason,
        }


def map_signature(
    sig: Signature, cohort_genes: Sequence[str], aliases: AliasTable, *, min_coverage: float = 0.7
) -> tuple[Signature | None, Coverage]:
    """Rename the signature's genes to the cohort's names; drop missing ones; decide whether it is scored.

    A signature is skipped when the found share of its genes is below `min_coverage`, or when the share of
    its total |weight| on missing genes exceeds 1 - min_coverage; a part of a multi-part signature with no
    gene left is reported in `empty_parts` and not scored.
    """
    if not 0 <= min_coverage <= 1:
        raise ConfigError(f"signatures.min_coverage must be within 0..1, got {min_coverage}")
    index = cohort_symbol_index(cohort_genes, aliases)
    rename: dict[str, str] = {}
    remapped: list[tuple[str, str]] = []
    missing: list[str] = []
    for published in sig.genes:
        fixed = sig.symbol_fixes.get(published, published)
        target = index.get(fixed) or index.get(aliases.current(fixed))
        if target is None:
            missing.append(published)
            continue
        rename[published] = target
        if target != published:
            remapped.append((published, target))
    total = len(sig.genes)
    weight_missing = 0.0
    if sig.weights:
        total_weight = sum(abs(w) for w in sig.weights.values())
        lost = sum(abs(w) for g, w in sig.weights.items() if g not in rename)
        weight_missing = lost / total_weight if total_weight else 0.0
    elif total:
        weight_missing = len(missing) / total
    sets = {part: tuple(dict.fromkeys(rename[g] for g in genes if g in rename)) for part, genes in sig.sets.items()}
    empty = tuple(part for part, genes in sets.items() if not genes and part != SINGLE)
    found = len(rename)
    reason = ""
    if found == 0:
        reason = "no gene of the signature is in the cohort"
    elif found / total < min_coverage:
        reason = f"coverage {found}/{total} = {found / total:.0%} below min_coverage {min_coverage:.0%}"
    elif weight_missing > 1 - min_coverage + 1e-12:
        reason = f"{weight_missing:.0%} of the total |weight| is on missing genes (allowed {1 - min_coverage:.0%})"
    elif sig.sets and all(not genes for genes in sets.values()):
        reason = "every gene set is empty in the cohort"
    coverage = Coverage(
        sig.id, total, found, tuple(remapped), tuple(missing), weight_missing, empty, scored=not reason, reason=reason
    )
    if reason:
        return None, coverage
    mapped = replace(
        sig,
        sets={part: genes for part, genes in sets.items() if genes},
        weights={rename[g]: w for g, w in sig.weights.items() if g in rename} if sig.weights else None,
        housekeeping=tuple(rename[g] for g in sig.housekeeping if g in rename),
    )
    return mapped, coverage


def unscored_coverage(signature_id: str, reason: str) -> Coverage:
    """A coverage row for a signature that could not even be mapped (e.g. its resource is unavailable)."""
    return Coverage(signature_id, 0, 0, (), (), math.nan, (), scored=False, reason=reason)
