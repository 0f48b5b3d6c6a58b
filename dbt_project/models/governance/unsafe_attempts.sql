{#- Segment-unsafe attempts, one row per campaign and source:
    - send_log: campaigns sent in the month that targeted a segment paused at send time (the
      pause behaviour of the version behind the month published before) or were sent by
      someone in their first N days (firewall.onboarding_days);
    - firewall: planned campaigns the firewall blocked, wholly or in part. -#}
{{ config(**month_table_config()) }}

with paused as (

    {{ paused_segments_of(previous_month_end()) }}

),

sends as (

    select
        sends.*,
        team.team,
        sends.targeted_segment in (select segment_id from paused) as paused_target,
        {{ days_between('team.joined_date', 'cast(sends.sent_at as date)') }}
            < {{ cadence_var("onboarding_days") | int }} as onboarding

    from {{ source_if_exists("raw", "campaign_sends", campaign_sends_columns()) }} as sends
    left join {{ source_if_exists("raw", "team_members", team_members_columns()) }} as team
        on team.sender_id = sends.sender_id
    where cast(sends.sent_at as date) between {{ month_first_day() }} and {{ month_end() }}
      and {{ "true" if has_send_log() else "false" }}

),

from_send_log as (

    select
        'send_log' as source,
        campaign_id,
        any_value(campaign_name) as campaign_name,
        any_value(sender_id) as sender_id,
        any_value(team) as team,
        any_value(channel) as channel,
        {{ distinct_list('targeted_segment') }} as segment_ids,
        min(sent_at) as attempted_at,
        date_trunc('week', min(sent_at)) as week,
        concat_ws(',',
            case when bool_or(paused_target) then 'targeted_paused_segment' end,
            case when bool_or(onboarding) then 'sender_in_onboarding' end) as reasons,
        count(distinct customer_id) as customers

    from sends
    group by campaign_id
    having bool_or(paused_target) or bool_or(onboarding)

),

from_firewall as (

    select
        'firewall' as source,
        check_id as campaign_id,
        campaign_name,
        sender_id,
        team,
        channel,
        coalesce(nullif(blocked_segments, ''), target_segments) as segment_ids,
        planned_at as attempted_at,
        date_trunc('week', planned_at) as week,
        {{ json_object_keys_list('reason_counts') }} as reasons,
        blocked as customers

    from {{ source("ops", "firewall_checks") }}
    where decision <> 'clear'
      and cast(planned_at as date) between {{ month_first_day() }} and {{ month_end() }}

),

attempts as (

    select * from from_send_log
    union all
    select * from from_firewall

),

final as (

    select
        {{ month_end() }} as month_end,
        cast(source as {{ string_type() }}) as source,
        cast(campaign_id as {{ string_type() }}) as campaign_id,
        cast(campaign_name as {{ string_type() }}) as campaign_name,
        cast(sender_id as {{ string_type() }}) as sender_id,
        cast(team as {{ string_type() }}) as team,
        cast(channel as {{ string_type() }}) as channel,
        cast(segment_ids as {{ string_type() }}) as segment_ids,
        cast(attempted_at as timestamp) as attempted_at,
        cast(week as date) as week,
        cast(reasons as {{ string_type() }}) as reasons,
        cast(customers as bigint) as customers

    from attempts

)

select * from final
