{#- Pressure patterns: attempts (segment-unsafe attempts and override requests) counted by
    team, channel, segment and week, against last month. The weeks are this month's only
    (last month's weeks never recur); a key seen only last month keeps its row with 0
    attempts, so a fall shows as well as a rise. Last month's attempts are read back from
    unsafe_attempts as it was recorded for that month. -#}
{{ config(**month_table_config()) }}

with attempts as (

    select month_end, team, channel, segment_ids, week
    from {{ ref("unsafe_attempts") }}
    where month_end in ({{ month_end() }}, {{ previous_month_end() }})

    union all

    select
        last_day(requested_at) as month_end,
        team,
        channel,
        segment_ids,
        cast(date_trunc('week', requested_at) as date) as week
    from {{ source("ops", "exception_requests") }}
    where kind = 'override'
      and last_day(requested_at) in ({{ month_end() }}, {{ previous_month_end() }})

),

keyed as (

    select month_end, 'team' as dimension, coalesce(team, 'unknown') as key from attempts
    union all
    select month_end, 'channel' as dimension, coalesce(channel, 'unknown') as key from attempts
    union all
    select
        month_end,
        'segment' as dimension,
        {{ unnest_comma_list("coalesce(nullif(segment_ids, ''), 'none')") }} as key
    from attempts
    union all
    select month_end, 'week' as dimension, {{ iso_date_text('week') }} as key from attempts
    where month_end = {{ month_end() }}

),

counted as (

    select
        dimension,
        key,
        count(*) filter (where month_end = {{ month_end() }}) as attempts,
        count(*) filter (where month_end = {{ previous_month_end() }}) as previous_attempts
    from keyed
    group by dimension, key

),

final as (

    select
        {{ month_end() }} as month_end,
        cast(dimension as {{ string_type() }}) as dimension,
        cast(key as {{ string_type() }}) as key,
        cast(attempts as bigint) as attempts,
        cast(previous_attempts as bigint) as previous_attempts,
        cast(attempts - previous_attempts as bigint) as change
    from counted

)

select * from final
