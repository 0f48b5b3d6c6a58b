"""The quarterly strategic refresh: re-fit the segmentation, prove it, propose a candidate.

Monthly refreshes apply the approved rules; once a quarter the rules themselves are
questioned. Buyers are clustered (k-means on standardised RFM and engagement features, k
chosen by the best silhouette score on a sample), the clusters are checked for stability
(adjusted Rand index across bootstrap subsamples and against the previous quarter),
clusters that are too small or not distinct from a neighbour are merged away, and the
result is turned into rules a person can read (a shallow decision tree's thresholds).

The candidate keeps what the re-fit must not touch: paused segments (pause behaviour is
governed on its own), segments the business rules protect (so a high-value customer still
never lands in a low-priority segment), segments of customers who never bought (their
behaviour is not what is clustered), and the fallback. It is a dictionary in the same YAML
form, computed for the same customers and month in the `strategic` schema and compared
with production; it goes live only through `segment-cadence definitions approve`.

scikit-learn is imported by the functions that fit, not with the module: every monthly
refresh imports the code location, and the quarterly refit is the only step that uses it
(0.4 s of every start otherwise).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Raw feature columns used for clustering and for the readable rules.
CLUSTER_FEATURES = (
    "recency_days",
    "frequency",
    "monetary_value",
    "engagement_events_90d",
    "engagement_channels_90d",
)
# Heavy-tailed counts and amounts are clustered on a log scale, then standardised.
LOG_FEATURES = ("frequency", "monetary_value", "engagement_events_90d")


@dataclass(frozen=True)
class StrategicSettings:
    k_range: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    silhouette_sample: int = 5_000
    bootstrap_rounds: int = 5
    bootstrap_fraction: float = 0.8
    min_share: float = 0.02  # a cluster below this share of buyers is rejected
    min_separation: float = 0.75  # centroids closer than this (standardised) are not distinct
    tree_depth: int = 4
    seed: int = 7


@dataclass
class Refit:
    """What the re-fit found, before it becomes a dictionary."""

    k_scores: dict[int, float]
    chosen_k: int
    labels: np.ndarray
    centers: np.ndarray
    bootstrap_ari: list[float]
    rejected: list[str] = field(default_factory=list)
    rules: dict[int, str] = field(default_factory=dict)
    rule_fidelity: float = 0.0
    profiles: pd.DataFrame | None = None


def standardise(features: pd.DataFrame) -> np.ndarray:
    """Log-scale the heavy tails, fill what is missing with the median, standardise."""
    frame = features.loc[:, list(CLUSTER_FEATURES)].astype(float).copy()
    for column in LOG_FEATURES:
        frame[column] = np.log1p(frame[column].clip(lower=0))
    frame = frame.fillna(frame.median())
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(frame.to_numpy())


def choose_k(x: np.ndarray, settings: StrategicSettings) -> tuple[int, dict[int, float]]:
    """The number of clusters with the highest silhouette score (computed on a sample)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(settings.seed)
    sample = (
        x
        if len(x) <= settings.silhouette_sample
        else x[rng.choice(len(x), settings.silhouette_sample, replace=False)]
    )
    scores: dict[int, float] = {}
    for k in settings.k_range:
        if k >= len(sample):
            break
        labels = KMeans(n_clusters=k, n_init=4, random_state=settings.seed).fit_predict(sample)
        scores[k] = float(silhouette_score(sample, labels))
    best = max(scores, key=lambda k: scores[k])
    return best, scores


def agreement(labels: Any, other: Any) -> float:
    """How far two labellings of the same customers agree (the adjusted Rand index: 1 the
    same partition, about 0 chance)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(labels, other))


def bootstrap_stability(
    x: np.ndarray, k: int, labels: np.ndarray, settings: StrategicSettings
) -> list[float]:
    """ARI between the fit and fits on bootstrap subsamples, each predicting every customer."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(settings.seed + 1)
    scores = []
    for round_ in range(settings.bootstrap_rounds):
        chosen = rng.choice(len(x), int(len(x) * settings.bootstrap_fraction), replace=True)
        model = KMeans(n_clusters=k, n_init=4, random_state=settings.seed + round_)
        model.fit(x[chosen])
        scores.append(agreement(labels, model.predict(x)))
    return scores


def reject_weak_clusters(
    x: np.ndarray, labels: np.ndarray, settings: StrategicSettings
) -> tuple[np.ndarray, list[str]]:
    """Merge clusters that are too small or too close to a neighbour into their nearest one."""
    labels = labels.copy()
    rejected: list[str] = []
    while True:
        ids = np.unique(labels)
        if len(ids) <= 1:
            return labels, rejected
        centers = np.array([x[labels == i].mean(axis=0) for i in ids])
        sizes = np.array([(labels == i).sum() for i in ids])
        distances = np.linalg.norm(centers[:, None, :] - centers[None, :, :], axis=2)
        np.fill_diagonal(distances, np.inf)
        smallest = int(np.argmin(sizes))
        if sizes[smallest] < settings.min_share * len(x):
            target = int(np.argmin(distances[smallest]))
            rejected.append(
                f"cluster {ids[smallest]} rejected: {sizes[smallest]} customers "
                f"({sizes[smallest] / len(x):.1%}) is below the minimum share "
                f"{settings.min_share:.0%}; merged into cluster {ids[target]}"
            )
            labels[labels == ids[smallest]] = ids[target]
            continue
        a, b = np.unravel_index(np.argmin(distances), distances.shape)
        if distances[a, b] < settings.min_separation:
            small, large = (a, b) if sizes[a] < sizes[b] else (b, a)
            rejected.append(
                f"cluster {ids[small]} rejected: not distinct from cluster {ids[large]} "
                f"(centroid distance {distances[a, b]:.2f} < {settings.min_separation})"
            )
            labels[labels == ids[small]] = ids[large]
            continue
        return labels, rejected


def _readable(value: float) -> float:
    """Round a split threshold to two significant figures: people read 3,200, not 3,187.55."""
    if value == 0 or not np.isfinite(value):
        return float(value)
    digits = 1 - int(np.floor(np.log10(abs(value))))
    return float(round(value, max(digits, 0)))


def readable_rules(
    features: pd.DataFrame, labels: np.ndarray, settings: StrategicSettings
) -> tuple[dict[int, str], float]:
    """A shallow tree that reproduces the clusters from raw features, as one rule per cluster.

    Returns the rules (each an OR of its leaves' AND-ed thresholds) and the fidelity: the
    share of customers whose rule-assigned cluster equals their k-means cluster.
    """
    from sklearn.tree import DecisionTreeClassifier

    frame = features.loc[:, list(CLUSTER_FEATURES)].astype(float).fillna(-1.0)
    tree = DecisionTreeClassifier(
        max_depth=settings.tree_depth,
        min_samples_leaf=max(1, int(settings.min_share * len(frame) / 2)),
        random_state=settings.seed,
    ).fit(frame.to_numpy(), labels)
    fidelity = float((tree.predict(frame.to_numpy()) == labels).mean())
    structure = tree.tree_
    leaves: dict[int, list[str]] = {}

    def walk(node: int, conditions: list[str]) -> None:
        if structure.children_left[node] == -1:
            cluster = int(tree.classes_[int(np.argmax(structure.value[node][0]))])
            leaves.setdefault(cluster, []).append(" and ".join(conditions) or "true")
            return
        column = CLUSTER_FEATURES[structure.feature[node]]
        threshold = _readable(structure.threshold[node])
        walk(structure.children_left[node], [*conditions, f"{column} <= {threshold:g}"])
        walk(structure.children_right[node], [*conditions, f"{column} > {threshold:g}"])

    walk(0, [])
    rules = {
        cluster: " or ".join(f"({leaf})" for leaf in paths_) if len(paths_) > 1 else paths_[0]
        for cluster, paths_ in leaves.items()
    }
    return rules, fidelity


def refit(features: pd.DataFrame, settings: StrategicSettings | None = None) -> Refit:
    """Cluster buyers, check stability, reject weak clusters, and describe them as rules."""
    settings = settings or StrategicSettings()
    if len(features) < 50:
        raise ValueError(f"only {len(features)} buyers: too few to re-fit the segmentation")
    from sklearn.cluster import KMeans

    x = standardise(features)
    k, scores = choose_k(x, settings)
    model = KMeans(n_clusters=k, n_init=8, random_state=settings.seed).fit(x)
    stability = bootstrap_stability(x, k, model.labels_, settings)
    labels, rejected = reject_weak_clusters(x, model.labels_, settings)
    rules, fidelity = readable_rules(features, labels, settings)
    profiles = (
        features.loc[:, list(CLUSTER_FEATURES)]
        .assign(cluster=labels)
        .groupby("cluster")
        .agg(
            customers=("frequency", "size"),
            recency_days=("recency_days", "median"),
            frequency=("frequency", "median"),
            monetary_value=("monetary_value", "median"),
            engagement_events_90d=("engagement_events_90d", "median"),
        )
    )
    return Refit(
        scores, k, labels, model.cluster_centers_, stability, rejected, rules, fidelity, profiles
    )


def cluster_names(profiles: pd.DataFrame) -> dict[int, tuple[str, str]]:
    """An id and a plain name per cluster from its profile: value tier and recency."""
    value_rank = profiles["monetary_value"].rank(pct=True)
    names: dict[int, tuple[str, str]] = {}
    used: set[str] = set()
    for cluster, row in profiles.iterrows():
        tier = (
            "high_value"
            if value_rank[cluster] > 0.67
            else "mid_value"
            if value_rank[cluster] > 0.34
            else "entry_value"
        )  # noqa: E501
        recency = (
            "recent"
            if row["recency_days"] <= 180
            else "quiet"
            if row["recency_days"] <= 540
            else "lapsed"
        )  # noqa: E501
        base = f"{recency}_{tier}"
        segment_id, n = base, 2
        while segment_id in used:
            segment_id, n = f"{base}_{n}", n + 1
        used.add(segment_id)
        names[int(cluster)] = (segment_id, segment_id.replace("_", " ").capitalize())
    return names


def _carried_over(segment: dict[str, Any], protected_ids: set[str]) -> bool:
    rule = str(segment.get("rule") or "")
    never_bought = re.search(r"\bfrequency\s*=\s*0\b", rule) is not None
    return (
        segment.get("status", "active") != "active"
        or bool(segment.get("paused"))
        or bool(segment.get("fallback"))
        or segment["id"] in protected_ids
        or never_bought
    )


def candidate_dictionary(
    production: dict[str, Any], result: Refit, quarter: str, protected_ids: set[str]
) -> dict[str, Any]:
    """The candidate in the dictionary's YAML form: carried-over segments plus the clusters."""
    candidate = copy.deepcopy(production)
    kept = [s for s in candidate["segments"] if _carried_over(s, protected_ids)]
    head = [
        s
        for s in kept
        if not s.get("fallback") and not re.search(r"frequency\s*=\s*0", str(s.get("rule")))
    ]  # noqa: E501
    tail = [s for s in kept if s not in head]
    names = cluster_names(result.profiles)
    order = result.profiles.sort_values("monetary_value", ascending=False).index
    clusters = []
    for cluster in order:
        segment_id, name = names[int(cluster)]
        profile = result.profiles.loc[cluster]
        clusters.append(
            {
                "id": segment_id,
                "name": name,
                "description": (
                    f"Quarterly re-fit {quarter}: buyers with median recency "
                    f"{profile['recency_days']:.0f} days, {profile['frequency']:.0f} orders and "
                    f"lifetime spend {profile['monetary_value']:,.0f}."
                ),
                "owner": "crm-ops",
                "priority": 0,
                "rule": f"frequency >= 1 and ({result.rules[int(cluster)]})",
                "paused": False,
                "min_size": 20,
                "status": "active",
            }
        )
    ordered = head + clusters + tail
    for priority, segment in enumerate(ordered, start=1):
        segment["priority"] = 99 if segment.get("fallback") else priority
    retired_ids = {s["id"] for s in ordered}
    for segment in production["segments"]:
        if segment["id"] not in retired_ids:
            ordered.append(
                {
                    **segment,
                    "status": "retired",
                    "retired_rationale": f"Replaced by the quarterly re-fit {quarter}.",
                    "priority": 100 + len(ordered),
                }
            )
    candidate["segments"] = ordered
    candidate["dictionary"] = f"{production.get('dictionary', 'segments')}-candidate-{quarter}"
    return candidate
