"""Survival endpoints: which a cohort has, and how a GEO cohort declares its own.

An endpoint is a name (OS, DSS, DFI, PFI, RFS, DMFS, EFS, PFS, TTR, ...) with two obs columns: `<NAME>.time`
(days, whatever unit the source used) and `<NAME>` (1 = event, 0 = censored). TCGA cohorts need no
declaration: the TCGA-CDR gives OS, DSS, DFI and PFI; the GDC /cases data and the Xena survival table OS.
A GEO cohort declares each endpoint it has in `geo.endpoints`:

    geo:
      endpoints:
        RFS: {time: Recurr months, event: Recurr status, unit: months, event_values: ["1"]}

`time` and `event` name characteristics keys (or sample-table columns); `unit` defaults to `geo.time_unit`
and `event_values` to `geo.event_values`. The older form, `geo.fields` mapping `OS.time` / `OS` (and
DSS, DFI, PFI) with `geo.time_unit`, still works and means the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .errors import ConfigError

CDR_ENDPOINTS = ("OS", "DSS", "DFI", "PFI")  # also the endpoints `geo.fields` may map (the older form)
TIME_UNIT_DAYS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
DEFAULT_EVENT_VALUES = ("1", "dead", "deceased", "yes")
# an endpoint name becomes obs columns, table cells and file names: letters, digits and _ only
ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
ENDPOINT_KEYS = ("time", "event", "unit", "event_values")


@dataclass(frozen=True)
class EndpointDeclaration:
    """One survival endpoint of a GEO cohort: where its time and status are, their unit and event values."""

    name: str
    time: str  # characteristics key or sample-table column of the follow-up time
    event: str  # ... of the status
    unit: str  # days, weeks, months or years
    event_values: tuple[str, ...]  # status values that mean an event (compared ignoring case)
    declared_in: str  # the config key that declares it (geo.fields or geo.endpoints.<NAME>)

    @property
    def days_per_unit(self) -> float:
        return TIME_UNIT_DAYS[self.unit]

    def as_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "time_field": self.time,
            "event_field": self.event,
            "unit": self.unit,
            "event_values": list(self.event_values),
            "declared_in": self.declared_in,
        }


def geo_endpoints(geo: Mapping[str, Any] | None, where: str) -> list[EndpointDeclaration]:
    """The survival endpoints a cohort's `geo` settings declare (`geo.endpoints`, and the older `geo.fields`
    form), in declaration order. A declaration without its time or event field, a unit that is not
    understood, an endpoint name that is not a safe identifier or an endpoint declared twice is a
    ConfigError naming the cohort and the key. `where` starts each message (`cohorts.<id>`, or the series
    file during harmonisation)."""
    geo = geo or {}
    where = f"{where}: geo"
    default_unit = geo.get("time_unit")
    if default_unit is not None and default_unit not in TIME_UNIT_DAYS:
        raise ConfigError(
            f"{where}.time_unit = {default_unit!r} is not understood; use one of {', '.join(TIME_UNIT_DAYS)}"
        )
    default_events = tuple(str(v) for v in geo.get("event_values", DEFAULT_EVENT_VALUES))
    declared: list[EndpointDeclaration] = []
    fields: Mapping[str, Any] = geo.get("fields") or {}
    for name in CDR_ENDPOINTS:
        keys = [k for k in (f"{name}.time", name) if k in fields]
        if not keys:
            continue
        if len(keys) == 1:
            other = f"{name}.time" if keys[0] == name else name
            raise ConfigError(
                f"{where}.fields maps {keys[0]} but not {other}: an endpoint needs both its time "
                "and its event (status) field"
            )
        if default_unit is None:
            timed = [f"{n}.time" for n in CDR_ENDPOINTS if f"{n}.time" in fields]
            raise ConfigError(
                f"{where}.fields maps {', '.join(timed)} but geo.time_unit is not set; state the "
                f"unit of the survival times in the series ({', '.join(TIME_UNIT_DAYS)})"
            )
        declared.append(
            EndpointDeclaration(
                name, str(fields[f"{name}.time"]), str(fields[name]), default_unit, default_events, "geo.fields"
            )
        )
    endpoints = geo.get("endpoints") or {}
    if not isinstance(endpoints, Mapping):
        raise ConfigError(f"{where}.endpoints must map endpoint names to {{time, event, unit, event_values}}")
    for name, spec in endpoints.items():
        key = f"{where}.endpoints.{name}"
        relative = f"geo.endpoints.{name}"
        if not ENDPOINT_NAME.fullmatch(str(name)):
            raise ConfigError(
                f"{key}: endpoint name {name!r} is not a safe identifier (a letter, then letters, "
                "digits or _, at most 32; it names obs columns and report tables)"
            )
        if name in {d.name for d in declared}:
            raise ConfigError(f"{key}: endpoint {name} is also mapped in geo.fields; declare it once")
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{key} must be a mapping with time, event and unit")
        unknown = sorted(set(spec) - set(ENDPOINT_KEYS))
        if unknown:
            raise ConfigError(f"{key}: unknown keys {unknown}; allowed {list(ENDPOINT_KEYS)}")
        absent = [k for k in ("time", "event") if not spec.get(k)]
        if absent:
            raise ConfigError(
                f"{key}: no {' and no '.join(absent)} field; an endpoint needs the characteristics "
                "key (or sample-table column) of its follow-up time and of its event status"
            )
        unit = spec.get("unit", default_unit)
        if unit is None:
            raise ConfigError(
                f"{key}: no unit; state the unit of its times ({', '.join(TIME_UNIT_DAYS)}) as "
                f"{relative}.unit or geo.time_unit"
            )
        if unit not in TIME_UNIT_DAYS:
            raise ConfigError(f"{key}.unit = {unit!r} is not understood; use one of {', '.join(TIME_UNIT_DAYS)}")
        values = spec.get("event_values")
        events = default_events if values is None else tuple(str(v) for v in values)
        if not events:
            raise ConfigError(f"{key}.event_values is empty: list the status values that mean an event")
        declared.append(EndpointDeclaration(str(name), str(spec["time"]), str(spec["event"]), unit, events, relative))
    return declared


def uses_cdr(cohort: Mapping[str, Any]) -> bool:
    """Whether a cohort takes its survival endpoints from the TCGA-CDR (`survival_source`: auto|cdr|source).

    `auto` (the default) means: TCGA projects from gdc or xena do, simulated cohorts and GEO never.
    """
    choice = cohort.get("survival_source", "auto")
    if cohort.get("source") not in {"gdc", "xena"} or choice == "source":
        if choice == "cdr" and cohort.get("source") == "geo":
            raise ConfigError("survival_source 'cdr' is for TCGA cohorts (gdc or xena), not GEO")
        return False
    if choice == "cdr":
        return True
    return str(cohort.get("project", "")).startswith("TCGA-") and not cohort.get("simulated", False)


def cohort_endpoint_names(cohort: Mapping[str, Any], cohort_id: str) -> list[str]:
    """The endpoints a configured cohort will have after harmonisation (known before any download): the
    TCGA-CDR's four, OS from the GDC /cases data or the Xena survival table, or what a GEO cohort declares."""
    if cohort.get("source") == "geo":
        return [d.name for d in geo_endpoints(cohort.get("geo"), f"cohorts.{cohort_id}")]
    return list(CDR_ENDPOINTS) if uses_cdr(cohort) else ["OS"]


def endpoint_names(obs: pd.DataFrame) -> list[str]:
    """The endpoints of a harmonised sample table with data: `<NAME>` and `<NAME>.time` columns with at least
    one sample knowing both. The CDR's four come first in their usual order, then the others as in obs."""
    timed = [c[: -len(".time")] for c in obs.columns if str(c).endswith(".time")]
    names = [n for n in CDR_ENDPOINTS if n in timed] + [n for n in timed if n not in CDR_ENDPOINTS]
    return [n for n in names if n in obs.columns and not obs[[n, f"{n}.time"]].dropna().empty]


def survival_column_names(obs: pd.DataFrame) -> list[str]:
    """Every endpoint column of obs (`<NAME>`, `<NAME>.time`), with data or not."""
    timed = [str(c)[: -len(".time")] for c in obs.columns if str(c).endswith(".time")]
    return [c for n in timed if n in obs.columns for c in (n, f"{n}.time")]


def requested_endpoints(requested: Any, obs: pd.DataFrame) -> list[str]:
    """Config `survival.endpoints` for one cohort: `all` (every endpoint the cohort has data for) or a list."""
    if requested is None or requested == "all":
        return endpoint_names(obs)
    return [str(e) for e in requested]
