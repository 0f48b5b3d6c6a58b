{#- What consumers read: the published segment kpis of each month's
    publication in force, the one the ledger names (macros/publication.sql). Same name
    and columns as ever; a view, so nothing is copied twice. -#}
{{ config(**published_view_config("segment_kpis")) }}

select
    store.month_end,
    store.segment_id,
    store.segment_name,
    store.paused,
    store.customers,
    store.share,
    store.revenue_this_month,
    store.revenue_365d,
    store.avg_lifetime_value,
    store.avg_churn_likelihood,
    store.avg_engagement_events_90d,
    store.campaign_response_rate,
    store.avg_months_in_segment,
    store.previous_customers,
    store.stayed,
    store.moved_in,
    store.moved_out,
    store.new_customers,
    store.retention_rate,
    store.avg_expected_purchases_12m,
    store.avg_clv,
    store.total_clv
from {{ in_force("store_segment_kpis") }}
