{#- The onboarding rule: sends in the month by team members in their first N days
    (governance.yaml firewall.onboarding_days, 30 by default): a send on day N after joining
    is allowed, day N-1 is not. One row per campaign and sender. -#}
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

in_onboarding as (

    select
        sends.campaign_id,
        sends.campaign_name,
        sends.sender_id,
        sends.sent_at,
        team.name,
        team.team,
        team.joined_date,
        {{ days_between('team.joined_date', 'cast(sends.sent_at as date)') }} as days_after_joining

    from sends
    inner join team on team.sender_id = sends.sender_id
    where {{ days_between('team.joined_date', 'cast(sends.sent_at as date)') }}
        < {{ cadence_var("onboarding_days") | int }}

),

final as (

    select
        {{ month_end() }} as month_end,
        cast(campaign_id as {{ string_type() }}) as campaign_id,
        cast(any_value(campaign_name) as {{ string_type() }}) as campaign_name,
        cast(sender_id as {{ string_type() }}) as sender_id,
        cast(any_value(name) as {{ string_type() }}) as sender_name,
        cast(any_value(team) as {{ string_type() }}) as team,
        cast(any_value(joined_date) as date) as joined_date,
        cast(min(sent_at) as timestamp) as first_send_at,
        cast(min(days_after_joining) as integer) as days_after_joining,
        cast(count(*) as bigint) as sends

    from in_onboarding
    group by campaign_id, sender_id

)

select * from final
