{#- Helpers of the analysis models (models/governance, models/health): tables kept per month,
    sources that may be absent, and the paused segments of the version behind a month. -#}

{#- Pre-hook of a table kept per month: remove the refreshed month before its rows go in, so
    a month that now has no rows is emptied too (delete+insert keyed on the new rows alone
    would keep the old ones). Runs in the model's transaction; nothing on the first build. -#}
{% macro replace_month() -%}
    {%- if is_incremental() -%}
        {{ adapter.dispatch("replace_month", "segment_cadence")() }}
    {%- endif -%}
{%- endmacro %}

{% macro default__replace_month() -%}
    delete from {{ this }} where month_end = {{ month_end() }}
{%- endmacro %}

{#- Spark's Parquet tables take no DELETE: the month is a partition (month_table_config). -#}
{% macro spark__replace_month() -%}
    alter table {{ this }} drop if exists partition (month_end = '{{ cadence_var("month_end") }}')
{%- endmacro %}

{#- A source that the ingest may not have loaded (no send log, no team list): the table when
    it exists, else an empty relation with the given {column: type} so that the models still
    build and report "nothing" (or "not evaluated") rather than fail. -#}
{% macro source_if_exists(source_name, table_name, columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if source_exists(source_name, table_name) -%}
        {{ relation }}
    {%- else -%}
        (select {% for name, type in columns.items() -%}
            cast(null as {{ string_type() if type == "varchar" else type }}) as {{ name }}{{ ", " if not loop.last }}
        {%- endfor %} where false)
    {%- endif -%}
{%- endmacro %}

{% macro source_exists(source_name, table_name) -%}
    {%- if not execute -%}{{ return(true) }}{%- endif -%}
    {%- set relation = source(source_name, table_name) -%}
    {#- a unit test's given rows stand in for the source: a CTE, with no schema -#}
    {%- if relation.schema is none or relation.identifier is none -%}{{ return(true) }}{%- endif -%}
    {%- set found = adapter.get_relation(database=relation.database, schema=relation.schema,
                                         identifier=relation.identifier) -%}
    {{- return(found is not none) -}}
{%- endmacro %}

{#- Red flags need the send log and the team list; without either they are not measured. -#}
{% macro has_send_log() -%}
    {{- return(source_exists("raw", "campaign_sends") and source_exists("raw", "team_members")) -}}
{%- endmacro %}

{% macro campaign_sends_columns() -%}
    {{- return({"send_id": "varchar", "campaign_id": "varchar", "campaign_name": "varchar",
                "customer_id": "varchar", "sender_id": "varchar", "channel": "varchar",
                "targeted_segment": "varchar", "sent_at": "timestamp"}) -}}
{%- endmacro %}

{% macro team_members_columns() -%}
    {{- return({"sender_id": "varchar", "name": "varchar", "team": "varchar",
                "joined_date": "date"}) -}}
{%- endmacro %}

{#- The first day of the refreshed month, as a date literal. -#}
{% macro month_first_day() -%}
    {{ date_literal(cadence_day("month_end").replace(day=1)) }}
{%- endmacro %}

{#- (definition_version, segment_id) of the segments paused in the version(s) that produced
    a published month: the pause behaviour in force for sends in the month after it. -#}
{% macro paused_segments_of(published_month) -%}
    select distinct dictionary.definition_version, dictionary.segment_id
    from {{ ref("segment_dictionary_versions") }} as dictionary
    where dictionary.paused
      and dictionary.definition_version in (
          select distinct definition_version
          from {{ source("published", "segment_membership") }}
          where month_end = {{ published_month }}
      )
{%- endmacro %}

{#- When an appended audit row was recorded: the wall clock, as a local timestamp, like the
    rest of the trail. A run may pass recorded_at (ISO) to pin it. -#}
{% macro recorded_at() -%}
    {%- set pinned = cadence_var("recorded_at") -%}
    {%- if pinned -%}
        cast('{{ pinned }}' as timestamp)
    {%- else -%}
        cast({{ local_now() }} as timestamp)
    {%- endif -%}
{%- endmacro %}
