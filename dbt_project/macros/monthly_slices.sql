{#- Incremental monthly models: which month slices a refresh (re)builds.

    A monthly model keeps one slice per calendar month (rows keyed by activity_month). The
    refresh of month M rebuilds:
      - M itself, always (a re-run or backfill of an old month rebuilds its slice);
      - every month up to M whose source rows changed since its slice was built, or that
        was never built (a skipped month, a month that arrived late, a run out of order),
        or whose rows have gone;
      - everything up to M when the model's SQL changed.
    "Changed" compares per-month fingerprints of the sources (row count and a checksum per
    source and month, written by ingest to raw._month_fingerprints) with those recorded
    when each slice was built (<model schema>.slice_log, written by the model's post-hook).
    Without a fingerprint table (sources loaded some other way) every month up to M is
    rebuilt: always right, never incremental.

    The first build, or dbt's --full-refresh, builds every month up to M at once.
    Plans are computed at execution only; while dbt parses they are empty. -#}

{% macro month_slice_plan(sources) -%}
    {%- set month_end = cadence_day("month_end") -%}
    {%- set refresh_month = month_end.replace(day=1).isoformat() -%}
    {%- set plan = {"incremental": false, "rebuild_all": true, "months": [],
                    "refresh_month": refresh_month, "fingerprints": {}} -%}
    {%- if not execute -%}{{ return(plan) }}{%- endif -%}

    {%- set current = month_fingerprints(sources, refresh_month) -%}
    {%- if current is not none -%}
        {%- do plan.update({"fingerprints": current}) -%}
    {%- endif -%}
    {%- if not is_incremental() -%}{{ return(plan) }}{%- endif -%}
    {%- do plan.update({"incremental": true}) -%}
    {%- if current is none -%}{{ return(plan) }}{%- endif -%}

    {%- set built = built_slices(this, refresh_month) -%}
    {%- set months = [refresh_month] -%}
    {%- for month, fingerprint in current.items() -%}
        {%- if built.get(month) != fingerprint and month not in months -%}
            {%- do months.append(month) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for month in built -%}
        {%- if month not in current and month not in months -%}
            {%- do months.append(month) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do plan.update({"rebuild_all": false, "months": months | sort}) -%}
    {{ return(plan) }}
{%- endmacro %}


{#- {month: fingerprint} for months up to refresh_month, over the given sources, or none
    when no fingerprint table exists. The model's own checksum is part of every
    fingerprint, so a change to its SQL rebuilds every slice. -#}
{% macro month_fingerprints(sources, refresh_month) -%}
    {%- set orders = source("raw", "orders") -%}
    {%- set table = adapter.get_relation(database=orders.database, schema=orders.schema,
                                         identifier="_month_fingerprints") -%}
    {%- if table is none -%}{{ return(none) }}{%- endif -%}
    {%- set rows = run_query(
        "select " ~ dbt.cast("month", dbt.type_string()) ~ ", source, "
        ~ dbt.cast("row_count", dbt.type_string()) ~ ", fingerprint from " ~ table
        ~ " where month <= cast('" ~ refresh_month ~ "' as date)"
        ~ " and source in ('" ~ sources | join("', '") ~ "') order by 1, 2"
    ) -%}
    {%- set found = {} -%}
    {%- for row in rows -%}
        {%- set part = row[1] ~ ":" ~ row[2] ~ ":" ~ row[3] -%}
        {%- do found.update({row[0]: (found.get(row[0], model.checksum.checksum[:12])) ~ "|" ~ part}) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}


{#- {month: fingerprint} of the slices built so far, up to refresh_month. -#}
{% macro built_slices(relation, refresh_month) -%}
    {%- set log = adapter.get_relation(database=relation.database, schema=relation.schema,
                                       identifier="slice_log") -%}
    {%- if log is none -%}{{ return({}) }}{%- endif -%}
    {%- set rows = run_query(
        "select " ~ dbt.cast("activity_month", dbt.type_string()) ~ ", fingerprint from " ~ log
        ~ " where model = '" ~ relation.identifier ~ "'"
        ~ " and activity_month <= cast('" ~ refresh_month ~ "' as date)"
    ) -%}
    {%- set built = {} -%}
    {%- for row in rows -%}{%- do built.update({row[0]: row[1]}) -%}{%- endfor -%}
    {{ return(built) }}
{%- endmacro %}


{#- The filter on a source's date column that selects the rows of the planned slices. -#}
{% macro month_slice_filter(plan, date_column) -%}
    {%- set last_day = "cast('" ~ cadence_day("month_end").isoformat() ~ "' as date)" -%}
    {%- if plan["rebuild_all"] -%}
        {{ date_column }} <= {{ last_day }}
    {%- else -%}
        ({%- for month in plan["months"] %}
        {%- set start = modules.datetime.date.fromisoformat(month) %}
        {{ "or " if not loop.first }}({{ date_column }} >= cast('{{ month }}' as date)
            and {{ date_column }} < cast('{{ next_month_start(start).isoformat() }}' as date))
        {%- endfor %})
    {%- endif -%}
{%- endmacro %}


{#- Before the build: create the slice log, forget it on a full build, and remove the
    slices about to be rebuilt (including months whose rows have gone, which a write keyed
    on the new rows would miss). -#}
{% macro month_slices_pre_hook(sources) -%}
    {%- if execute -%}
        {{- adapter.dispatch("month_slices_pre_hook", "segment_cadence")(sources) -}}
    {%- endif -%}
{%- endmacro %}

{#- DuckDB (and any engine with DELETE): in the model's transaction, so a build that stops
    halfway leaves the slices and the log as they were. -#}
{% macro default__month_slices_pre_hook(sources) -%}
    {%- set plan = month_slice_plan(sources) -%}
    {%- set log = this.incorporate(path={"identifier": "slice_log"}) -%}
    {%- call statement("create_slice_log") -%}
        create table if not exists {{ log }} (
            model {{ dbt.type_string() }},
            activity_month date,
            fingerprint {{ dbt.type_string() }},
            built_at {{ dbt.type_timestamp() }}
        )
    {%- endcall -%}
    {%- if not plan["incremental"] -%}
        delete from {{ log }} where model = '{{ this.identifier }}'
    {%- else -%}
        delete from {{ this }}
        where {{ month_slice_filter(plan, "activity_month") }}
    {%- endif -%}
{%- endmacro %}

{#- Spark: the model and its log are Parquet tables partitioned by month, which take no
    DELETE and no transaction; a slice is a partition, dropped whole. The log's entry goes
    first, then the slice: a build stopped between the two finds the month unbuilt and
    builds it again. -#}
{% macro spark__month_slices_pre_hook(sources) -%}
    {%- set plan = month_slice_plan(sources) -%}
    {%- set log = this.incorporate(path={"identifier": "slice_log"}) -%}
    {%- call statement("create_slice_log") -%}
        create table if not exists {{ log }} (
            fingerprint string,
            built_at timestamp,
            model string,
            activity_month date
        )
        using parquet
        partitioned by (model, activity_month)
    {%- endcall -%}
    {%- if not plan["incremental"] -%}
        {%- set forgotten = logged_months(log, this.identifier) -%}
        {%- set removed = [] -%}
    {%- elif plan["rebuild_all"] -%}
        {%- set forgotten = logged_months(log, this.identifier, plan["refresh_month"]) -%}
        {%- set removed = built_months(this, plan["refresh_month"]) -%}
    {%- else -%}
        {%- set forgotten = plan["months"] -%}
        {%- set removed = plan["months"] -%}
    {%- endif -%}
    {%- for month in forgotten -%}
        {%- call statement("forget_slice") -%}
            alter table {{ log }} drop if exists
            partition (model = '{{ this.identifier }}', activity_month = '{{ month }}')
        {%- endcall -%}
    {%- endfor -%}
    {%- for month in removed -%}
        {%- call statement("remove_slice") -%}
            alter table {{ this }} drop if exists partition (activity_month = '{{ month }}')
        {%- endcall -%}
    {%- endfor -%}
{%- endmacro %}


{#- The months (ISO dates) of a model in its slice log, up to `up_to` if given. -#}
{% macro logged_months(log, model_name, up_to=none) -%}
    {%- set rows = run_query(
        "select distinct " ~ dbt.cast("activity_month", dbt.type_string()) ~ " from " ~ log
        ~ " where model = '" ~ model_name ~ "'"
        ~ (" and activity_month <= cast('" ~ up_to ~ "' as date)" if up_to else "")
    ) -%}
    {{- return(rows.columns[0].values() | list) -}}
{%- endmacro %}


{#- The months (ISO dates) a monthly model holds rows for, up to `up_to`. -#}
{% macro built_months(relation, up_to) -%}
    {%- set rows = run_query(
        "select distinct " ~ dbt.cast("activity_month", dbt.type_string()) ~ " from " ~ relation
        ~ " where activity_month <= cast('" ~ up_to ~ "' as date)"
    ) -%}
    {{- return(rows.columns[0].values() | list) -}}
{%- endmacro %}


{#- After the build: every slice up to the refresh month now matches the sources' current
    fingerprints; record them. -#}
{% macro month_slices_post_hook(sources) -%}
    {%- if execute -%}
        {{- adapter.dispatch("month_slices_post_hook", "segment_cadence")(sources) -}}
    {%- endif -%}
{%- endmacro %}

{#- DuckDB: in the model's transaction, the log's months up to the refresh month rewritten. -#}
{% macro default__month_slices_post_hook(sources) -%}
    {%- set plan = month_slice_plan(sources) -%}
    {%- set log = this.incorporate(path={"identifier": "slice_log"}) -%}
    {%- call statement("clear_slice_log") -%}
        delete from {{ log }}
        where model = '{{ this.identifier }}'
          and activity_month <= cast('{{ plan["refresh_month"] }}' as date)
    {%- endcall -%}
    {%- if plan["fingerprints"] -%}
        insert into {{ log }} (model, activity_month, fingerprint, built_at) values
        {%- for month, fingerprint in plan["fingerprints"].items() %}
            ('{{ this.identifier }}', cast('{{ month }}' as date), '{{ fingerprint }}',
             {{ dbt.current_timestamp() }}){{ "," if not loop.last }}
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#- Spark: the pre-hook forgot exactly the months it rebuilt; they are recorded now, the
    months left alone keep their entries. -#}
{% macro spark__month_slices_post_hook(sources) -%}
    {%- set plan = month_slice_plan(sources) -%}
    {%- set log = this.incorporate(path={"identifier": "slice_log"}) -%}
    {%- set logged = built_slices(this, plan["refresh_month"]) -%}
    {%- set recorded = [] -%}
    {%- for month, fingerprint in plan["fingerprints"].items() if month not in logged -%}
        {%- do recorded.append((month, fingerprint)) -%}
    {%- endfor -%}
    {%- if recorded -%}
        insert into {{ log }} partition (model = '{{ this.identifier }}', activity_month)
        select fingerprint, {{ dbt.current_timestamp() }} as built_at, activity_month from values
        {%- for month, fingerprint in recorded %}
            ('{{ fingerprint }}', cast('{{ month }}' as date)){{ "," if not loop.last }}
        {%- endfor %}
        as recorded (fingerprint, activity_month)
    {%- endif -%}
{%- endmacro %}


{#- The incremental strategy for monthly slices on this adapter: delete+insert keyed on the
    month on DuckDB (and Postgres, Snowflake, Trino on Iceberg); on Spark insert_overwrite of
    month partitions (the model is partitioned by activity_month there: its pre-hook drops
    the partitions of months whose rows have gone). -#}
{% macro month_slice_strategy() -%}
    {{ return(adapter.dispatch("month_slice_strategy")()) }}
{%- endmacro %}

{% macro default__month_slice_strategy() -%}
    {{ return("delete+insert") }}
{%- endmacro %}

{% macro spark__month_slice_strategy() -%}
    {{ return("insert_overwrite") }}
{%- endmacro %}
