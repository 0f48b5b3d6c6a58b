{#- Pause violations: the month's sends that reached a customer whose segment was paused at
    send time. "At send time" is the membership in force then: the month published before
    (previous_month_end), with the pause behaviour of the definition version that produced
    it. When that month was never published, or there is no send log, nothing is measured
    here and red_flags says "not evaluated", never a silent zero. -#}
{{ config(**month_table_config()) }}

with sends as (

    select *
    from {{ source_if_exists("raw", "campaign_sends", campaign_sends_columns()) }}
    where cast(sent_at as date) between {{ month_first_day() }} and {{ month_end() }}
      and {{ "true" if has_send_log() else "false" }}

),

team as (

    select * from {{ source_if_exists("raw", "team_members", team_members_columns()) }}

),

membership_at_send_time as (

    select customer_id, month_end, segment_id, definition_version
    from {{ source("published", "segment_membership") }}
    where month_end = {{ previous_month_end() }}

),

paused as (

    {{ paused_segments_of(previous_month_end()) }}

),

final as (

    select
        {{ month_end() }} as month_end,
        cast(sends.send_id as {{ string_type() }}) as send_id,
        cast(sends.sent_at as timestamp) as sent_at,
        cast(sends.campaign_id as {{ string_type() }}) as campaign_id,
        cast(sends.campaign_name as {{ string_type() }}) as campaign_name,
        cast(sends.sender_id as {{ string_type() }}) as sender_id,
        cast(team.name as {{ string_type() }}) as sender_name,
        cast(team.team as {{ string_type() }}) as team,
        cast(sends.channel as {{ string_type() }}) as channel,
        cast(sends.customer_id as {{ string_type() }}) as customer_id,
        cast(membership_at_send_time.segment_id as {{ string_type() }}) as segment_id,
        cast(sends.targeted_segment as {{ string_type() }}) as targeted_segment,
        membership_at_send_time.month_end as membership_month

    from sends
    inner join membership_at_send_time
        on membership_at_send_time.customer_id = sends.customer_id
    inner join paused
        on paused.definition_version = membership_at_send_time.definition_version
        and paused.segment_id = membership_at_send_time.segment_id
    left join team on team.sender_id = sends.sender_id

)

select * from final
