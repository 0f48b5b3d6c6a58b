"""Why a segment is empty when a source it needs has no data.

A mapping may leave out the engagement events or the campaign sends (README "Your own
data"). Their features are then NULL, and a segment whose rule reads one of them places
nobody. An empty segment with no reason looks like a bug; this says which feature it reads
and which source is missing, for the segment-size check's metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from segment_cadence.defs.dictionary import rules
from segment_cadence.defs.dictionary.segment_dictionary import SegmentDictionary, feature_columns

# The source each family of features is computed from (customer_features.sql).
FEATURE_SOURCES = {"engagement_": "engagement_events", "campaign_": "campaign_sends"}


def source_of(feature: str) -> str | None:
    return next((s for prefix, s in FEATURE_SOURCES.items() if feature.startswith(prefix)), None)


def why_empty(
    dictionary: SegmentDictionary,
    sizes: Mapping[str, int],
    sources_without_rows: Iterable[str],
) -> dict[str, str]:
    """{segment id: the reason} for each empty ruled segment that reads a feature of a
    source without rows."""
    missing = set(sources_without_rows)
    known = feature_columns()
    reasons: dict[str, str] = {}
    for segment in dictionary.ruled:
        if sizes.get(segment.id, 0) or not segment.rule:
            continue
        columns = rules.compile_rule(segment.rule, known).columns
        needed = [(c, source_of(c)) for c in columns if source_of(c) in missing]
        if needed:
            features = ", ".join(c for c, _ in needed)
            sources = ", ".join(sorted({s for _, s in needed if s}))
            reasons[segment.id] = (
                f"empty: its rule reads {features}, which is unknown (NULL) because {sources} "
                "has no rows (the source mapping leaves it out)"
            )
    return reasons
