"""Config validation with messages that name the key, the value and what is allowed.

`snakemake.utils.validate` fills the schema defaults; this module runs first so that a user sees every
problem at once, in plain words, before any job starts.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import MISSING
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from .errors import ConfigError

# jsonschema is imported where a config is validated, not here: every job imports this module (settings_from_block)
# and most never validate (docs/performance.md)
if TYPE_CHECKING:
    import jsonschema


SettingsT = TypeVar("SettingsT")
SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def settings_from_block(
    cls: type[SettingsT], values: Mapping[str, Any] | None, block: str, ignore: Collection[str] = ()
) -> SettingsT:
    """A settings dataclass from one config block; keys the class does not know, and keys it needs that are
    missing, are refused by name.

    `ignore` lists keys of the block that other code reads (for example enrichment collections).
    """
    values = {key: value for key, value in dict(values or {}).items() if key not in ignore}
    fields = cls.__dataclass_fields__  # type: ignore[attr-defined]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{block}: unknown keys {unknown}; allowed {sorted(set(fields) | set(ignore))}")
    needed = [name for name, f in fields.items() if f.init and f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in needed if name not in values]
    if missing:
        raise ConfigError(f"{block}: missing required keys {missing}")
    return cls(**values)


def with_schema_defaults(
    values: Mapping[str, Any] | None, block: str, schema_path: str | os.PathLike[str] = SCHEMA
) -> dict[str, Any]:
    """Top-level config block `block` with the schema's defaults filled in, nested blocks too, as
    `snakemake.utils.validate` fills them; a value the schema refuses is a ConfigError naming the key.

    The schema is the one home of every default: settings classes built from a block read them here
    instead of repeating them.
    """
    schema = _cached_schema(os.fspath(schema_path))
    node = {**schema["properties"][block], "definitions": schema.get("definitions", {})}
    filled = copy.deepcopy(dict(values or {}))
    import jsonschema

    base = jsonschema.validators.validator_for(schema)
    validator = jsonschema.validators.extend(base, {"properties": _fill_defaults(base)})(node)
    messages = [
        f"{'.'.join([block, *map(str, error.absolute_path)])}: {error.message}"
        for error in validator.iter_errors(filled)
    ]
    if messages:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(messages))
    return filled


def _fill_defaults(base: Any) -> Any:
    validate_properties = base.VALIDATORS["properties"]

    def fill(validator: Any, properties: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]) -> Any:
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return fill


@functools.lru_cache(maxsize=4)
def _cached_schema(path: str) -> dict[str, Any]:
    return load_schema(path)


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML (or JSON) config file as a dict; a missing file or a syntax error names the file, line and column."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {os.fspath(path)} not found (working directory {os.getcwd()})") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {os.fspath(path)} is a directory, not a YAML file") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{os.fspath(path)}, line {mark.line + 1}, column {mark.column + 1}" if mark else os.fspath(path)
        context = (
            f" ({error.context} at line {error.context_mark.line + 1}, column {error.context_mark.column + 1})"
            if error.context and error.context_mark
            else ""
        )
        raise ConfigError(f"{where}: YAML syntax error: {error.problem}{context}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{os.fspath(path)}: not valid YAML ({error})") from None
    if not isinstance(document, dict):
        raise ConfigError(
            f"config file {os.fspath(path)} must hold a mapping of keys at top level, found {type(document).__name__}"
        )
    return document


# libyaml's loader where PyYAML was built with it: the schemas are repository files (no user-facing YAML errors),
# read at every workflow parse; the pure-Python loader takes 0.14 s for config.schema.yaml, libyaml 0.02 s
_SCHEMA_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_schema(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_SCHEMA_LOADER)


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    where = _where(error)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "propertyNames" in list(error.schema_path):
        if error.validator == "enum":
            allowed = "allowed keys: " + ", ".join(map(str, error.validator_value))
        else:
            allowed = f"keys must match {error.validator_value!r}" + (
                f" ({schema['description']})" if "description" in schema else ""
            )
        return f"{where}: key {error.instance!r} is not allowed; {allowed}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{where} = {error.instance!r} is not allowed; allowed values: {allowed}"
    if error.validator == "pattern":
        hint = schema.get("description", "")
        return f"{where} = {error.instance!r} does not match the pattern {error.validator_value!r}" + (
            f" ({hint})" if hint else ""
        )
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(schema.get("properties", {})))
        return f"{where}: {error.message}; allowed keys: {allowed}"
    if error.validator == "required":
        # a conditional requirement (if/then) explains itself in the description of its `then`
        hint = schema.get("description", "") if "then" in list(error.schema_path) else ""
        return f"{where}: {error.message}" + (f": {hint.strip()}" if hint else "")
    if error.validator == "type":
        return f"{where} = {error.instance!r} should be of type {error.validator_value}"
    if error.validator in {"minimum", "maximum", "exclusiveMinimum", "minItems", "minProperties"}:
        return f"{where} = {error.instance!r}: {error.message}"
    return f"{where} = {error.instance!r}: {error.message}"


def config_errors(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    import jsonschema

    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)
    messages = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        expand = error.validator in {"anyOf", "oneOf", "allOf"} and error.context
        leaves = list(error.context) if expand else [error]
        messages.extend(_describe(leaf) for leaf in leaves)
    return list(dict.fromkeys(messages))


def _comparison_errors(cohort_id: str, comparisons: list[Mapping[str, Any]]) -> list[str]:
    messages = []
    names = [str(c.get("name")) for c in comparisons]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        messages.append(
            f"cohorts.{cohort_id}.comparisons: names {repeated} are used more than once; each comparison "
            "needs its own name (it names the result folder)"
        )
    for i, comparison in enumerate(comparisons):
        where = f"cohorts.{cohort_id}.comparisons[{i}] ({comparison.get('name')})"
        if str(comparison.get("test")) == str(comparison.get("reference")):
            messages.append(f"{where}: test and reference are both {comparison.get('test')!r}")
        if comparison.get("column") in (comparison.get("covariates") or []):
            messages.append(f"{where}: the compared column {comparison.get('column')!r} is also listed as a covariate")
    return messages


def _signature_errors(config: Mapping[str, Any], catalogue_ids: Collection[str]) -> list[str]:
    """include / exclude / heatmap_order_by name catalogue entries (score columns are `<id>` or `<id>__<part>`)."""
    block = config.get("signatures") or {}
    if not block.get("enabled", True):
        return []
    known = set(catalogue_ids)
    messages = []
    for key in ("include", "exclude"):
        unknown = sorted(set(block.get(key) or []) - known)
        if unknown:
            messages.append(
                f"signatures.{key}: unknown signature id(s) {unknown}; known ids: {', '.join(sorted(known))}"
            )
    order_by = block.get("heatmap_order_by")
    user_prefixes = tuple(user_set_prefix(spec["gmt"]) for spec in block.get("user_gmts") or [] if "gmt" in spec)
    if order_by and not str(order_by).startswith(user_prefixes or ("\0",)):
        signature = str(order_by).split("__", 1)[0]
        scored = (set(block.get("include") or []) or known) - set(block.get("exclude") or [])
        if signature not in known:
            close = difflib.get_close_matches(signature, sorted(known), n=3)
            messages.append(
                f"signatures.heatmap_order_by = {order_by!r} is not a signature of the catalogue"
                + (f"; did you mean {', '.join(close)}?" if close else f"; known ids: {', '.join(sorted(known))}")
            )
        elif signature not in scored:
            messages.append(
                f"signatures.heatmap_order_by = {order_by!r}: signature {signature!r} is not scored "
                "(left out by signatures.include / exclude)"
            )
    lasso = (config.get("survival") or {}).get("lasso") or {}
    universe = lasso.get("universe")
    if lasso.get("enabled") and isinstance(universe, Mapping):
        unknown = sorted(set(universe.get("catalogue") or []) - known)
        if unknown:
            messages.append(f"survival.lasso.universe.catalogue: unknown signature id(s) {unknown}")
    return messages


def user_set_prefix(gmt: str | os.PathLike[str]) -> str:
    """The score-column prefix of a user GMT's sets: `user_<file stem>_` (signatures.user_gmt_signatures)."""
    name = Path(gmt).name.removesuffix(".gz").removesuffix(".gmt").removesuffix(".txt")
    return f"user_{re.sub(r'[^0-9A-Za-z]+', '_', name).strip('_')}_"


def _endpoint_errors(config: Mapping[str, Any]) -> list[str]:
    """Each cohort's survival endpoints (a GEO cohort declares its own), and the LASSO-Cox training endpoint
    against the endpoints its discovery cohort will have."""
    from .endpoints import cohort_endpoint_names

    messages, names = [], {}
    for cohort_id, cohort in (config.get("cohorts") or {}).items():
        try:
            names[cohort_id] = cohort_endpoint_names(cohort, str(cohort_id))
        except ConfigError as error:
            messages.append(str(error))
    lasso = (config.get("survival") or {}).get("lasso") or {}
    discovery, endpoint = lasso.get("discovery"), lasso.get("endpoint", "OS")
    if lasso.get("enabled") and discovery in names and endpoint not in names[discovery]:
        messages.append(
            f"survival.lasso.endpoint = {endpoint!r}: the discovery cohort {discovery} has no such "
            f"endpoint (its endpoints: {', '.join(names[discovery]) or 'none'}); a GEO cohort declares "
            "its endpoints in geo.endpoints"
        )
    return messages


def _cohort_reference_errors(config: Mapping[str, Any]) -> list[str]:
    """Blocks that name configured cohorts (survival.lasso) or need several of them (pancancer)."""
    cohorts = list(config.get("cohorts") or {})
    messages = []
    lasso = (config.get("survival") or {}).get("lasso") or {}
    if lasso.get("enabled"):
        named = [("discovery", lasso["discovery"])] if "discovery" in lasso else []
        for key, cohort in named + [("validation", c) for c in lasso.get("validation") or []]:
            if cohort not in cohorts:
                messages.append(
                    f"survival.lasso.{key}: {cohort!r} is not a configured cohort (cohorts: {', '.join(cohorts)})"
                )
    if (config.get("pancancer") or {}).get("enabled"):
        if len(cohorts) < 2:
            messages.append(f"pancancer.enabled: the pan-cancer page needs two or more cohorts, found {len(cohorts)}")
        if not (config.get("signatures") or {}).get("enabled", True):
            messages.append(
                "pancancer.enabled: the pan-cancer page reads the signature scores; set signatures.enabled: true"
            )
    return messages


def semantic_errors(config: Mapping[str, Any], catalogue_ids: Collection[str] | None = None) -> list[str]:
    """Rules a JSON Schema expresses badly: what each source needs, comparisons, the cohorts other blocks name,
    catalogue ids.

    `catalogue_ids`: the signature catalogue's ids, to check the ids the config names (skipped when None).
    """
    messages = []
    for cohort_id, cohort in (config.get("cohorts") or {}).items():
        source = cohort.get("source")
        if source in {"gdc", "xena"} and not cohort.get("project"):
            messages.append(f"cohorts.{cohort_id}: source {source!r} needs 'project' (for example TCGA-LIHC)")
        if source == "geo" and not cohort.get("accession"):
            messages.append(f"cohorts.{cohort_id}: source 'geo' needs 'accession' (for example GSE14520)")
        if source != "geo" and cohort.get("geo"):
            messages.append(f"cohorts.{cohort_id}: 'geo' settings given for a {source!r} cohort")
        messages.extend(_comparison_errors(cohort_id, list(cohort.get("comparisons") or [])))
    messages.extend(_cohort_reference_errors(config))
    messages.extend(_endpoint_errors(config))
    if catalogue_ids is not None:
        messages.extend(_signature_errors(config, catalogue_ids))
    return messages


def catalogue_ids(directory: str | os.PathLike[str]) -> list[str]:
    """The ids of the signature catalogue in `directory` (validated entries)."""
    from .signatures import load_catalogue

    return [signature.id for signature in load_catalogue(directory)]


def validate_config(
    config: Mapping[str, Any], schema_path: str | os.PathLike[str], catalogue_ids: Collection[str] | None = None
) -> None:
    schema = _cached_schema(os.fspath(schema_path))
    messages = config_errors(config, schema)
    if not messages:
        messages = semantic_errors(config, catalogue_ids)
    if messages:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(messages))


def main(argv: list[str] | None = None) -> int:
    """`python -m ferrostem.config FILE [--schema SCHEMA]`: check config files before Snakemake reads them.

    Snakemake's own reader prints a traceback for a missing `--configfile` and names no line for a YAML
    error; the make targets run this first.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m ferrostem.config", description=main.__doc__)
    parser.add_argument("files", nargs="+", help="config files, as given to --configfile")
    parser.add_argument("--schema", help="also validate against this JSON Schema (workflow/schemas/config.schema.yaml)")
    parser.add_argument(
        "--catalogue", help="signature catalogue folder whose ids the config may name (resources/signatures)"
    )
    args = parser.parse_args(argv)
    try:
        for path in args.files:
            config = load_config_file(path)
            if args.schema:
                validate_config(config, args.schema, catalogue_ids(args.catalogue) if args.catalogue else None)
    except ConfigError as error:
        print(f"ConfigError: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
