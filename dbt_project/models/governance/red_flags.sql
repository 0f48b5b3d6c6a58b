{#- The charter's red-flag metrics of the month, one row per metric. A metric that cannot be
    measured (pause violations without the previous month's membership or a send log; the
    onboarding rule without a send log) has a null value and evaluated = false, never 0.
    The Dagster checks and the review pack read this table. -#}
{{ config(**month_table_config()) }}

with previous_month_published as (

    select count(*) > 0 as published
    from {{ source("published", "segment_membership") }}
    where month_end = {{ previous_month_end() }}

),

pause_violations as (

    select count(*) as value
    from {{ ref("pause_violations") }}
    where month_end = {{ month_end() }}

),

onboarding_violations as (

    select coalesce(sum(sends), 0) as value
    from {{ ref("onboarding_violations") }}
    where month_end = {{ month_end() }}

),

unsafe_attempts as (

    select count(*) as value
    from {{ ref("unsafe_attempts") }}
    where month_end = {{ month_end() }}

),

requests as (

    select
        count(*) filter (where kind = 'override') as manual_override_attempts,
        count(*) as exception_requests
    from {{ source("ops", "exception_requests") }}
    where cast(requested_at as date) between {{ month_first_day() }} and {{ month_end() }}

),

suppressed as (

    select
        coalesce(sum(blocked), 0) as suppressed_campaign_volume,
        count(*) filter (where decision = 'blocked') as suppressed_campaigns
    from {{ source("ops", "firewall_checks") }}
    where cast(planned_at as date) between {{ month_first_day() }} and {{ month_end() }}

),

metrics as (

    select
        'pause_violation_count' as metric,
        case
            when previous_month_published.published and {{ has_send_log() }}
                then pause_violations.value
        end as value,
        'not evaluated: the previous month''s membership is not published or there is no send log'
            as detail_when_not_evaluated
    from pause_violations cross join previous_month_published

    union all
    select 'segment_unsafe_attempts', value, null from unsafe_attempts
    union all
    select 'manual_override_attempts', manual_override_attempts, null from requests
    union all
    select
        'onboarding_violations',
        case when {{ has_send_log() }} then value end,
        null
    from onboarding_violations
    union all
    select 'suppressed_campaign_volume', suppressed_campaign_volume, null from suppressed
    union all
    select 'suppressed_campaigns', suppressed_campaigns, null from suppressed
    union all
    select 'exception_requests', exception_requests, null from requests

),

final as (

    select
        {{ month_end() }} as month_end,
        cast(metric as {{ string_type() }}) as metric,
        cast(value as bigint) as value,
        value is not null as evaluated,
        cast(case when value is null then detail_when_not_evaluated end as {{ string_type() }}) as detail
    from metrics

)

select * from final
