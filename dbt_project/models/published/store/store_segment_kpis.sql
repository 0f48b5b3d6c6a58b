{#- The published segment kpis of every publication, keyed by (month_end,
    publication_id): the build of the month (ref, so it runs only after the build and its
    tests), in the interface's column types, tagged with this publication. Readers see it
    through the view published.segment_kpis once the ledger names this publication
    (macros/publication.sql). -#}
{{ config(**store_table_config()) }}

select
    cast(month_end as date) as month_end,
    cast(segment_id as {{ string_type() }}) as segment_id,
    cast(segment_name as {{ string_type() }}) as segment_name,
    cast(paused as boolean) as paused,
    cast(customers as bigint) as customers,
    cast(share as double) as share,
    cast(revenue_this_month as double) as revenue_this_month,
    cast(revenue_365d as double) as revenue_365d,
    cast(avg_lifetime_value as double) as avg_lifetime_value,
    cast(avg_churn_likelihood as double) as avg_churn_likelihood,
    cast(avg_engagement_events_90d as double) as avg_engagement_events_90d,
    cast(campaign_response_rate as double) as campaign_response_rate,
    cast(avg_months_in_segment as double) as avg_months_in_segment,
    cast(previous_customers as bigint) as previous_customers,
    cast(stayed as bigint) as stayed,
    cast(moved_in as bigint) as moved_in,
    cast(moved_out as bigint) as moved_out,
    cast(new_customers as bigint) as new_customers,
    cast(retention_rate as double) as retention_rate,
    cast({{ publication_id() }} as {{ string_type() }}) as publication_id,
    cast(avg_expected_purchases_12m as double) as avg_expected_purchases_12m,
    cast(avg_clv as double) as avg_clv,
    cast(total_clv as double) as total_clv
from {{ ref('segment_kpis') }}
where month_end = {{ month_end() }}
