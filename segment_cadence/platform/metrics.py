"""One measured value: a metric of a segment (or of the inputs, segment '*') for a month.

Shared by the health room, which measures most of them, and the governance room, whose pause
violations alert through the same ladder; here so neither room imports the other both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Metric:
    month_end: date
    segment_id: str
    metric: str
    value: float | None
