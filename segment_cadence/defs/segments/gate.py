"""The publish gate: a month is published only when its inputs and its result are usable.

dbt's blocking tests prove the build is well formed (every customer placed once, the
business rules hold). They cannot tell a month built from an empty or half-quarantined
orders file from a real one: such a month is perfectly well formed, and wrong. The gate
looks at what went in and what came out before anything is published:

- inputs: the month has loaded order lines, its volume is within bounds of recent months,
  no source quarantined more than its bound, and the newest order and engagement event are
  recent enough for the month;
- result: not too many customers moved into the fallback, and no paused segment that had
  members was emptied (the firewall protects paused segments through their membership).

A month that trips any of them is held: it stays in the `build` schema, and the last
published month stays in force for the firewall and every reader. Publishing a held month
takes a release: a recorded act by an approver with a reason (`segment-cadence release`),
bound to the very inputs that were held, never a flag on the refresh. The bounds are
governed configuration (the `publish_gate` section of config/thresholds.yaml). Holds and
releases are governance records in the state store (publish_holds, publish_releases), so
releasing a month never needs the warehouse open for writing.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml
from sqlalchemy import Connection, insert, select

from segment_cadence.platform import yaml_text
from segment_cadence.platform.months import add_months
from segment_cadence.platform.state_store import publish_holds, publish_releases
from segment_cadence.platform.warehouse import table_exists

# The jeweller's defaults. Volume swings with the festive and wedding seasons, so the
# volume bounds are wide: a month is held when it falls below a quarter or rises above
# four times the median of the months before it, not for a seasonal peak.
DEFAULT_MAX_QUARANTINE_RATE = 0.05


@dataclass(frozen=True)
class GateBounds:
    """Bounds of the publish gate (see config/thresholds.yaml, section `publish_gate`)."""

    min_order_lines: int = 1
    volume_min_ratio: float = 0.25
    volume_max_ratio: float = 4.0
    volume_baseline_months: int = 6
    volume_min_baseline_months: int = 3
    max_quarantine_rate: dict[str, float] = field(default_factory=dict)
    max_input_age_days: dict[str, int] = field(
        default_factory=lambda: {"orders": 21, "engagement_events": 21}
    )
    max_share_into_fallback: float = 0.10
    hold_when_paused_segment_empties: bool = True

    def quarantine_bound(self, source: str) -> float:
        return self.max_quarantine_rate.get(
            source, self.max_quarantine_rate.get("default", DEFAULT_MAX_QUARANTINE_RATE)
        )


class GateConfigError(ValueError):
    """The publish_gate section is unusable; the message names the file and the field."""


_FRESHNESS_COLUMNS = {"orders": "order_date", "engagement_events": "event_at"}


def _number(raw: dict[str, Any], name: str, where: str, *, whole: bool = False) -> Any:
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise GateConfigError(f"{where}: publish_gate.{name} must be a number >= 0, got {value!r}")
    if whole and not isinstance(value, int):
        raise GateConfigError(f"{where}: publish_gate.{name} must be a whole number, got {value!r}")
    return value


def bounds_from_document(document: Any, where: str) -> GateBounds:
    """The gate bounds of a parsed thresholds document; defaults for what it leaves out."""
    raw = (document or {}).get("publish_gate") if isinstance(document, dict) else None
    if raw is None:
        return GateBounds()
    if not isinstance(raw, dict):
        raise GateConfigError(f"{where}: publish_gate must be a mapping of bounds")
    defaults = GateBounds()
    known = set(asdict(defaults))
    unknown = sorted(set(raw) - known)
    if unknown:
        raise GateConfigError(
            f"{where}: publish_gate has unknown field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    for name in ("volume_min_ratio", "volume_max_ratio", "max_share_into_fallback"):
        if name in raw:
            values[name] = float(_number(raw, name, where))
    for name in ("min_order_lines", "volume_baseline_months", "volume_min_baseline_months"):
        if name in raw:
            values[name] = int(_number(raw, name, where, whole=True))
    if "hold_when_paused_segment_empties" in raw:
        if not isinstance(raw["hold_when_paused_segment_empties"], bool):
            raise GateConfigError(
                f"{where}: publish_gate.hold_when_paused_segment_empties must be true or false"
            )
        values["hold_when_paused_segment_empties"] = raw["hold_when_paused_segment_empties"]
    for name, cast in (("max_quarantine_rate", float), ("max_input_age_days", int)):
        if name not in raw:
            continue
        if not isinstance(raw[name], dict):
            raise GateConfigError(
                f"{where}: publish_gate.{name} must map a source (or 'default') to a bound"
            )
        per_source = {}
        for source, value in raw[name].items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise GateConfigError(
                    f"{where}: publish_gate.{name}.{source} must be a number >= 0, got {value!r}"
                )
            per_source[str(source)] = cast(value)
        values[name] = per_source
    bounds = GateBounds(**{**asdict(defaults), **values})
    if bounds.volume_min_ratio > bounds.volume_max_ratio:
        raise GateConfigError(
            f"{where}: publish_gate.volume_min_ratio must not exceed volume_max_ratio"
        )
    return bounds


def load_bounds(path: Path) -> GateBounds:
    """Read the gate bounds from a thresholds file."""
    try:
        document = yaml_text.load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return GateBounds()
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise GateConfigError(f"{path}: not readable as YAML: {error}") from None
    return bounds_from_document(document, str(path))


@dataclass(frozen=True)
class GateFinding:
    """One reason to hold the month: what was measured, against which bound."""

    check: str
    subject: str
    value: float | None
    bound: float | None
    message: str


@dataclass(frozen=True)
class Release:
    month_end: date
    inputs_fingerprint: str
    released_by: str
    reason: str
    released_at: datetime


@dataclass(frozen=True)
class GateDecision:
    month_end: date
    inputs_fingerprint: str
    findings: tuple[GateFinding, ...]
    measured: dict[str, float | None]
    release: Release | None = None

    @property
    def held(self) -> bool:
        return bool(self.findings) and self.release is None

    def summary(self) -> str:
        if not self.findings:
            return f"{self.month_end:%Y-%m}: inputs and result within the publish gate's bounds"
        lines = [f"  - {f.message}" for f in self.findings]
        if self.release is not None:
            head = (
                f"{self.month_end:%Y-%m}: released by {self.release.released_by} "
                f"({self.release.reason}) despite:"
            )
        else:
            head = (
                f"{self.month_end:%Y-%m} is held by the publish gate; the last published month "
                "stays in force:"
            )
        return "\n".join([head, *lines])


def inputs_fingerprint(con: duckdb.DuckDBPyConnection, month_end: date, version: str) -> str:
    """Identity of what the month was built from: each source's last load and the version.

    A release is bound to it, so releasing a held month never carries over to other data.
    """
    loads = con.execute(
        "select source, arg_max(fingerprint, loaded_at) from raw._loads group by 1 order by 1"
    ).fetchall()
    text = json.dumps([month_end.isoformat(), version, loads])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _order_volume(
    con: duckdb.DuckDBPyConnection, month_end: date, bounds: GateBounds
) -> tuple[int, float | None, list[GateFinding]]:
    month = month_end.replace(day=1)
    counts = dict(
        con.execute(
            "select month, row_count from raw._month_fingerprints where source = 'orders'"
        ).fetchall()
    )
    volume = int(counts.get(month, 0))
    findings: list[GateFinding] = []
    if volume < bounds.min_order_lines:
        findings.append(
            GateFinding(
                "order_volume",
                "orders",
                float(volume),
                float(bounds.min_order_lines),
                f"orders: {volume:,} order lines loaded for {month:%Y-%m} "
                f"(at least {bounds.min_order_lines:,} needed)",
            )
        )
        return volume, None, findings
    first = min(counts) if counts else month
    earlier = [add_months(month, -k) for k in range(1, bounds.volume_baseline_months + 1)]
    baseline_months = [counts.get(m, 0) for m in earlier if m >= first]
    if len(baseline_months) < max(bounds.volume_min_baseline_months, 1):
        return volume, None, findings
    baseline = float(statistics.median(baseline_months))
    if baseline <= 0:
        return volume, baseline, findings
    ratio = volume / baseline
    if ratio < bounds.volume_min_ratio or ratio > bounds.volume_max_ratio:
        way, bound = (
            ("fell to", bounds.volume_min_ratio)
            if ratio < bounds.volume_min_ratio
            else ("rose to", bounds.volume_max_ratio)
        )
        findings.append(
            GateFinding(
                "order_volume",
                "orders",
                ratio,
                bound,
                f"orders: {volume:,} order lines in {month:%Y-%m} {way} {ratio:.2f}x the median "
                f"of the {len(baseline_months)} months before ({baseline:,.0f}); bounds "
                f"{bounds.volume_min_ratio:g}x to {bounds.volume_max_ratio:g}x",
            )
        )
    return volume, baseline, findings


def _quarantine(con: duckdb.DuckDBPyConnection, bounds: GateBounds) -> list[GateFinding]:
    rows = con.execute(
        "select source, arg_max(rows_loaded, loaded_at), arg_max(rows_quarantined, loaded_at) "
        "from raw._loads group by 1 order by 1"
    ).fetchall()
    findings = []
    for source, loaded, quarantined in rows:
        total = (loaded or 0) + (quarantined or 0)
        if not total:
            continue
        rate = (quarantined or 0) / total
        bound = bounds.quarantine_bound(source)
        if rate > bound:
            findings.append(
                GateFinding(
                    "quarantine_rate",
                    source,
                    rate,
                    bound,
                    f"{source}: {quarantined:,} of {total:,} rows quarantined ({rate:.1%}; "
                    f"bound {bound:.1%}); see quarantine.rejected_rows for the reasons",
                )
            )
    return findings


def _staleness(
    con: duckdb.DuckDBPyConnection,
    month_end: date,
    bounds: GateBounds,
    unmapped: frozenset[str] = frozenset(),
) -> tuple[dict[str, float | None], list[GateFinding]]:
    ages: dict[str, float | None] = {}
    findings = []
    for source, limit in sorted(bounds.max_input_age_days.items()):
        column = _FRESHNESS_COLUMNS.get(source)
        # A source the mapping leaves out has no rows by design, not stale ones.
        if column is None or source in unmapped or not table_exists(con, "raw", source):
            continue
        newest = con.execute(
            f"select max(cast({column} as date)) from raw.{source} "
            f"where cast({column} as date) <= ?",
            [month_end],
        ).fetchone()[0]
        age = None if newest is None else float((month_end - newest).days)
        ages[source] = age
        if age is None:
            # No rows at all: the order-volume check names an empty orders source.
            if source != "orders":
                findings.append(
                    GateFinding(
                        "stale_inputs",
                        source,
                        None,
                        float(limit),
                        f"{source}: no rows on or before {month_end}",
                    )
                )
        elif age > limit:
            findings.append(
                GateFinding(
                    "stale_inputs",
                    source,
                    age,
                    float(limit),
                    f"{source}: the newest row is from {newest}, {age:.0f} days before the "
                    f"month end (bound {limit} days); the file may be stale",
                )
            )
    return ages, findings


def _result(
    con: duckdb.DuckDBPyConnection, fallback: str, bounds: GateBounds
) -> tuple[float | None, list[GateFinding]]:
    findings: list[GateFinding] = []
    if not table_exists(con, "build", "segment_membership"):
        return None, findings
    total, into_fallback = con.execute(
        "select count(*), count(*) filter (where segment_id = ? and previous_segment_id is not "
        "null and previous_segment_id <> ?) from build.segment_membership",
        [fallback, fallback],
    ).fetchone()
    share = into_fallback / total if total else None
    if share is not None and share > bounds.max_share_into_fallback:
        findings.append(
            GateFinding(
                "fallback_share",
                fallback,
                share,
                bounds.max_share_into_fallback,
                f"result: {into_fallback:,} of {total:,} customers ({share:.1%}) moved into the "
                f"fallback '{fallback}' (bound {bounds.max_share_into_fallback:.1%})",
            )
        )
    if bounds.hold_when_paused_segment_empties and table_exists(con, "build", "segment_kpis"):
        emptied = con.execute(
            "select segment_id, previous_customers from build.segment_kpis "
            "where paused and customers = 0 and coalesce(previous_customers, 0) > 0 order by 1"
        ).fetchall()
        for segment_id, before in emptied:
            findings.append(
                GateFinding(
                    "paused_segment_emptied",
                    segment_id,
                    0.0,
                    float(before),
                    f"result: paused segment '{segment_id}' would go from {before:,} members "
                    "to 0, and the firewall would protect no one in it",
                )
            )
    return share, findings


def latest_release(state: Connection, month_end: date, fingerprint: str) -> Release | None:
    """The newest release of these very inputs of the month (state store), if any."""
    r = publish_releases.c
    row = state.execute(
        select(r.month_end, r.inputs_fingerprint, r.released_by, r.reason, r.released_at)
        .where(r.month_end == month_end, r.inputs_fingerprint == fingerprint)
        .order_by(r.released_at.desc())
        .limit(1)
    ).first()
    return Release(*row) if row else None


def measure(
    con: duckdb.DuckDBPyConnection,
    month_end: date,
    definition_version: str,
    fallback_segment: str,
    bounds: GateBounds,
    unmapped: frozenset[str] = frozenset(),
) -> GateDecision:
    """Measure the month's inputs and build (warehouse) against the bounds. Reads only; no
    release looked up yet (with_release). `unmapped`: the sources the mapping leaves out,
    whose freshness is not measured."""
    fingerprint = inputs_fingerprint(con, month_end, definition_version)
    volume, baseline, findings = _order_volume(con, month_end, bounds)
    findings += _quarantine(con, bounds)
    ages, stale = _staleness(con, month_end, bounds, unmapped)
    findings += stale
    share, result = _result(con, fallback_segment, bounds)
    findings += result
    measured: dict[str, float | None] = {
        "order_lines_in_month": float(volume),
        "order_lines_baseline_median": baseline,
        "share_moved_into_fallback": share,
        **{f"{source}_age_days": age for source, age in ages.items()},
    }
    return GateDecision(month_end, fingerprint, tuple(findings), measured)


def with_release(state: Connection, decision: GateDecision) -> GateDecision:
    """The decision with the release of its very inputs, if an approver gave one (state
    store). Apart from measure, so the store's writer turn is not held while the warehouse is
    measured."""
    if not decision.findings:
        return decision
    release = latest_release(state, decision.month_end, decision.inputs_fingerprint)
    return replace(decision, release=release)


def record_hold(state: Connection, decision: GateDecision, run_id: str) -> None:
    """Keep the held month's findings (state store): what a release will refer to."""
    state.execute(
        insert(publish_holds).values(
            month_end=decision.month_end,
            run_id=run_id,
            inputs_fingerprint=decision.inputs_fingerprint,
            findings=json.dumps([asdict(f) for f in decision.findings]),
            held_at=datetime.now(UTC).replace(tzinfo=None),
        )
    )


@dataclass(frozen=True)
class Hold:
    month_end: date
    run_id: str
    inputs_fingerprint: str
    findings: tuple[GateFinding, ...]
    held_at: datetime


def last_published_at(con: duckdb.DuckDBPyConnection | None, month_end: date) -> datetime | None:
    """When the month was last published (warehouse), or None: never, or no warehouse yet."""
    if con is None or not table_exists(con, "published", "publications"):
        return None
    return con.execute(
        "select max(published_at) from published.publications where month_end = ?", [month_end]
    ).fetchone()[0]


def latest_hold(
    state: Connection, month_end: date, con: duckdb.DuckDBPyConnection | None
) -> Hold | None:
    """The month's most recent hold (state store), unless a later run published the month
    (the publication record in the warehouse `con`, read only; None when there is none)."""
    h = publish_holds.c
    row = state.execute(
        select(h.month_end, h.run_id, h.inputs_fingerprint, h.findings, h.held_at)
        .where(h.month_end == month_end)
        .order_by(h.held_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    published_at = last_published_at(con, month_end)
    if published_at is not None and published_at > row.held_at:
        return None
    findings = tuple(GateFinding(**f) for f in json.loads(row.findings))
    return Hold(row.month_end, row.run_id, row.inputs_fingerprint, findings, row.held_at)


def record_release(state: Connection, hold: Hold, released_by: str, reason: str) -> Release:
    """Record that an approver lets this held month (these very inputs) be published. Looked
    up and released in the same state-store transaction, so the release binds to the hold
    that was read."""
    now = datetime.now(UTC).replace(tzinfo=None)
    state.execute(
        insert(publish_releases).values(
            month_end=hold.month_end,
            inputs_fingerprint=hold.inputs_fingerprint,
            released_by=released_by,
            reason=reason,
            findings=json.dumps([asdict(f) for f in hold.findings]),
            released_at=now,
        )
    )
    return Release(hold.month_end, hold.inputs_fingerprint, released_by, reason, now)
