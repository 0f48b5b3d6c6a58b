"""Holdouts: the customers kept from campaigns so that a segment's treatment can be measured.

Why a salted hash and not a random draw: the same customer must stay in or out month after
month and across definition versions, or a comparison of treated and held-out customers
mixes in whoever moved. A customer's draw is a number in [0, 1) from the MD5 of the salt and
the customer id, so it depends on nothing else. A customer is in the global control when the
draw is below the global share, and in their segment's holdout when it is below the global
share plus the segment's share. Raising a share only adds customers to a holdout (Census
keeps assignment stable until the percentages change); re-drawing means a new salt, which is
a governed change of the dictionary, approved and recorded like any other (a global control
that is never re-drawn drifts into bias, as Braze's users found).

The warehouse computes the same draw (macro `holdout_draw`, DuckDB and Spark); the Python
here is the reference, used by the generator's simulated campaign tool and by the tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

GLOBAL = "global"
SEGMENT = "segment"
# How many hex digits of the MD5 make the draw: 32 bits, plenty for shares in 0.1 % steps,
# and an integer both engines convert exactly.
DRAW_HEX_DIGITS = 8
MAX_SHARE = 0.5


@dataclass(frozen=True)
class HoldoutPlan:
    """Who is held out: the salt, the global control's share and each segment's share."""

    salt: str = ""
    global_share: float = 0.0
    segment_shares: dict[str, float] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.global_share > 0 or any(v > 0 for v in self.segment_shares.values())

    def share_of(self, segment_id: str) -> float:
        return self.segment_shares.get(segment_id, 0.0)

    def group_of(self, customer_id: str, segment_id: str) -> str | None:
        """`global`, `segment` or None (treated) for a customer in a segment."""
        if not self.active:
            return None
        u = draw(self.salt, customer_id)
        if u < self.global_share:
            return GLOBAL
        if u < self.global_share + self.share_of(segment_id):
            return SEGMENT
        return None

    def dbt_vars(self) -> dict[str, Any]:
        return {
            "holdout_salt": self.salt,
            "holdout_global_share": self.global_share,
            "holdout_segment_shares": [
                {"id": s, "share": v} for s, v in sorted(self.segment_shares.items()) if v > 0
            ],
        }

    def governed(self) -> dict[str, Any]:
        """What the definition version sees: re-drawing or resizing a holdout is a change."""
        return {
            "salt": self.salt,
            "global_share": self.global_share,
            "segment_shares": {s: v for s, v in sorted(self.segment_shares.items()) if v > 0},
        }

    def describe(self) -> str:
        """In a reviewer's words: "salt 'x', global control 2 %, loyal_repeat 10 %"."""
        if not self.active:
            return "no holdouts"
        parts = [f"salt '{self.salt}'"]
        if self.global_share:
            parts.append(f"global control {self.global_share * 100:g} %")
        parts += [f"{s} {v * 100:g} %" for s, v in sorted(self.segment_shares.items()) if v > 0]
        return ", ".join(parts)


NO_HOLDOUTS = HoldoutPlan()


def draw(salt: str, customer_id: str) -> float:
    """The customer's place in [0, 1): the first 32 bits of MD5("<salt>:<customer id>")."""
    digest = hashlib.md5(f"{salt}:{customer_id}".encode()).hexdigest()
    return int(digest[:DRAW_HEX_DIGITS], 16) / 16**DRAW_HEX_DIGITS


def duckdb_draw_sql(salt: str, customer_id_sql: str) -> str:
    """The same draw as a DuckDB expression (for SQL that runs outside dbt: the generator)."""
    quoted = salt.replace("'", "''")
    return (
        f"(('0x' || substr(md5('{quoted}:' || {customer_id_sql}), 1, {DRAW_HEX_DIGITS}))"
        f"::BIGINT / {16**DRAW_HEX_DIGITS}.0)"
    )


def parse(raw: Any, segment_shares: dict[str, float], problems: list[str]) -> HoldoutPlan:
    """The dictionary's `holdouts:` section (salt, global_control) with the segments'
    `holdout:` shares; a problem is added, in a reviewer's words, for anything else."""
    if raw is None:
        if any(v > 0 for v in segment_shares.values()):
            problems.append(
                "holdouts: segments declare a holdout share but the dictionary has no "
                "'holdouts:' section with the salt that draws them"
            )
        return NO_HOLDOUTS
    if not isinstance(raw, dict):
        problems.append(f"holdouts: must be a mapping with salt and global_control, got {raw!r}")
        return NO_HOLDOUTS
    unknown = sorted(set(raw) - {"salt", "global_control"})
    if unknown:
        problems.append(
            f"holdouts: unknown key {', '.join(map(repr, unknown))} (known: salt, global_control)"
        )
    salt = raw.get("salt")
    if not isinstance(salt, str) or not salt.strip():
        problems.append("holdouts.salt must be a non-empty text; a new salt re-draws every holdout")
        return NO_HOLDOUTS
    global_share = raw.get("global_control", 0)
    if not _is_share(global_share):
        problems.append(
            f"holdouts.global_control must be a share from 0 to {MAX_SHARE}, for example 0.02 "
            f"for 2 %; got {global_share!r}"
        )
        return NO_HOLDOUTS
    for segment_id, share in sorted(segment_shares.items()):
        if share + global_share > MAX_SHARE:
            problems.append(
                f"segment '{segment_id}': holdout {share} with the global control "
                f"{global_share} holds out more than {MAX_SHARE:g} of the segment"
            )
    return HoldoutPlan(
        salt=salt.strip(), global_share=float(global_share), segment_shares=dict(segment_shares)
    )


def parse_share(value: Any, label: str, problems: list[str]) -> float:
    """A segment's `holdout:` share (absent: 0)."""
    if value is None:
        return 0.0
    if not _is_share(value):
        problems.append(
            f"{label}: holdout must be a share from 0 to {MAX_SHARE}, for example 0.1 for "
            f"10 %; got {value!r}"
        )
        return 0.0
    return float(value)


def _is_share(value: Any) -> bool:
    return (
        not isinstance(value, bool) and isinstance(value, int | float) and 0 <= value <= MAX_SHARE
    )
