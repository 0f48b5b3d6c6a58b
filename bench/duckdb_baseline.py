"""The lower bound: the month's segmentation as one hand-written DuckDB query.

Computes only the features the rules read, with the BG/NBD parameters passed in, and
writes (customer_id, segment_id) to Parquet. No orchestration, no tests, no history.

    python -m bench.duckdb_baseline RAW_DIR YYYY-MM PARAMS_JSON OUT.parquet
"""

from __future__ import annotations

import json
import sys

import duckdb

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.platform.months import month_end, parse_month


def main(raw: str, month: str, params_json: str, out: str) -> None:
    end = month_end(parse_month(month)).isoformat()
    p = json.loads(params_json)
    dictionary = segment_dictionary.load()
    case = "case " + " ".join(f"when {s.rule_sql} then '{s.id}'" for s in dictionary.ruled)
    case += f" else '{dictionary.fallback.id}' end"
    duckdb.sql(f"""
        copy (
            with customers as (
                select customer_id from '{raw}/customers.parquet' where signup_date <= date '{end}'
            ),
            purchases as (
                select customer_id, date '{end}' - max(order_date) as recency_days,
                       count(distinct order_id) as frequency, sum(amount) as monetary_value,
                       count(distinct order_date) - 1 as x,
                       (max(order_date) - min(order_date)) / 7.0 as t_x,
                       (date '{end}' - min(order_date)) / 7.0 as big_t
                from '{raw}/orders.parquet' where order_date <= date '{end}' group by 1
            ),
            engagement as (
                select customer_id, count(*) as engagement_events_365d,
                       count(*) filter (where event_at::date > date '{end}' - 90) as engagement_events_90d,
                       count(distinct channel) filter (where event_at::date > date '{end}' - 90)
                           as engagement_channels_90d
                from '{raw}/engagement_events.parquet'
                where event_at::date <= date '{end}' and event_at::date > date '{end}' - 365
                group by 1
            ),
            features as (
                select c.customer_id, p.recency_days,
                       coalesce(p.frequency, 0) as frequency,
                       coalesce(p.monetary_value, 0) as monetary_value,
                       coalesce(e.engagement_events_365d, 0) as engagement_events_365d,
                       coalesce(e.engagement_events_90d, 0) as engagement_events_90d,
                       coalesce(e.engagement_channels_90d, 0) as engagement_channels_90d,
                       case when p.x is null then null when p.x = 0 then 0.0
                            else 1 - 1 / (1 + exp(least(700, ln({p["a"]}) - ln({p["b"]} + p.x - 1)
                                 + ({p["r"]} + p.x) * ln(({p["alpha"]} + p.big_t) / ({p["alpha"]} + p.t_x)))))
                       end as churn_likelihood,
                       case when p.frequency > 0 then ntile(5) over (
                           partition by p.frequency > 0 order by p.monetary_value, c.customer_id) end as m_score
                from customers c
                left join purchases p using (customer_id)
                left join engagement e using (customer_id)
            )
            select customer_id, {case} as segment_id from features
        ) to '{out}' (format parquet)
    """)


if __name__ == "__main__":
    main(*sys.argv[1:5])
