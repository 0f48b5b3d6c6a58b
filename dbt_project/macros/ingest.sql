{#- The ingest rules (models/ingest): which landed rows of a source become raw.<source> and
    which are refused, with the first reason that applies. The Python front door
    (segment_cadence/defs/ingest/ingest.py) lands each file as it is in landing.<source> with
    its row number (_source_row); these macros type the mapped columns and check them. The
    canonical columns and their kinds are the project var `ingest_sources`. -#}

{#- The schema of the landed files: as named on DuckDB, <target schema>_landing elsewhere. -#}
{% macro landing_schema() -%}
    {{- return("landing" if target.type == "duckdb" else target.schema ~ "_landing") -}}
{%- endmacro %}

{#- {file column: upper-case type} of the landed file, read from the warehouse (also in a
    unit test, whose inputs dbt types from the same relation). Empty while parsing. -#}
{% macro landed_column_types(source_name) -%}
    {%- set types = {} -%}
    {%- if execute -%}
        {%- set relation = adapter.get_relation(database=target.database, schema=landing_schema(),
                                                identifier=source_name) -%}
        {%- if relation is not none -%}
            {%- for column in adapter.get_columns_in_relation(relation) -%}
                {%- do types.update({column.name: column.dtype | upper}) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {{- return(types) -}}
{%- endmacro %}

{#- {canonical column: file column}: the mapping the ingest run passed for the source it
    loads, else the canonical names themselves. -#}
{% macro ingest_mapping(source_name) -%}
    {%- set mapping = {} -%}
    {%- set passed = cadence_var("ingest_columns") if cadence_var("ingest_source") == source_name else {} -%}
    {%- for column in var("ingest_sources")[source_name]["columns"] -%}
        {%- do mapping.update({column: passed.get(column, column)}) -%}
    {%- endfor -%}
    {{- return(mapping) -}}
{%- endmacro %}

{#- Why a row whose customer is not loaded is refused: its customer_id names no customer, or,
    in a source that names its customers by email or phone (the identity map), nobody has
    that email or phone. -#}
{% macro unknown_customer_reason() -%}
    {%- set kind = cadence_var("ingest_identity") -%}
    {{- return("no customer with this " ~ kind if kind else "unknown customer_id") -}}
{%- endmacro %}

{#- The optional columns the loaded source's file leaves out: NULL, and no rule checks them. -#}
{% macro ingest_absent(source_name) -%}
    {{- return(cadence_var("ingest_absent") if cadence_var("ingest_source") == source_name else []) -}}
{%- endmacro %}

{#- The SQL type a kind is loaded as. -#}
{% macro ingest_type(kind) -%}
    {{- return({"id": string_type(), "text": string_type(), "date": "date", "timestamp": "timestamp",
                "amount": "double", "bool": "boolean"}[kind]) -}}
{%- endmacro %}

{% macro is_text_type(source_type) -%}
    {{- return(source_type in ("VARCHAR", "STRING", "")) -}}
{%- endmacro %}

{#- The typed value of a file column, NULL when it cannot be read as its kind. Columns
    already of the right type (Parquet usually) are cast directly; text is trimmed and
    parsed: the front door has rewritten dates and amounts in other formats as ISO dates
    and plain numbers (segment_cadence/defs/ingest/value_formats.py). -#}
{% macro ingest_value(kind, column, source_type) -%}
    {%- set native = {"date": ["DATE"],
                      "timestamp": ["TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NTZ", "DATE"],
                      "amount": ["DOUBLE", "FLOAT", "REAL", "INTEGER", "INT", "BIGINT", "SMALLINT", "HUGEINT"],
                      "bool": ["BOOLEAN"]} -%}
    {%- set target_type = ingest_type(kind) -%}
    {%- if source_type in native.get(kind, []) or (kind == "amount" and source_type.startswith("DECIMAL")) -%}
        cast({{ column }} as {{ target_type }})
    {%- else -%}
        {%- set text = "nullif(trim(cast(" ~ column ~ " as " ~ string_type() ~ ")), '')" -%}
        {%- if kind in ("id", "text") -%}
            {{ text }}
        {%- else -%}
            try_cast({{ text }} as {{ target_type }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- True when a date or timestamp falls outside the plausible days (config/sources.yaml
    plausible_dates, both ends included). The latest day is computed by the warehouse when
    the rules run; a timestamp is implausible from the first instant of the day after it. -#}
{% macro implausible(column) -%}
    {{ column }} < cast('{{ cadence_var("plausible_earliest") }}' as date)
    or {{ column }} >= {{ days_after_today(cadence_var("plausible_latest_days_ahead") | int + 1) }}
{%- endmacro %}

{#- The first reason a typed row cannot be loaded, or NULL when it is fine. The order is
    the reading order of a row: ids first, then each date and amount, then the duplicate key,
    then the unknown customer. Columns the file leaves out (`absent`) are not checked. -#}
{% macro ingest_reason(spec, absent=[]) -%}
    case
    {%- for column, kind in spec["columns"].items() if kind == "id" and column not in absent %}
        when {{ column }} is null then 'missing {{ column }}'
    {%- endfor %}
    {%- for column, kind in spec["columns"].items() if column not in absent %}
        {%- if kind in ("date", "timestamp") %}
        when {{ column }} is null and _blank_{{ column }} then 'missing {{ column }}'
        when {{ column }} is null then 'unparseable {{ column }}'
        when {{ implausible(column) }} then 'implausible {{ column }}'
        {%- elif kind == "amount" %}
        when {{ column }} is null and _blank_{{ column }} then 'missing {{ column }}'
        when {{ column }} is null then 'unparseable {{ column }}'
        when not {{ is_finite(column) }} then 'absurd {{ column }}'
        when {{ column }} < 0 then 'negative {{ column }}'
        when {{ column }} > {{ cadence_var("max_order_amount") | float }} then 'absurd {{ column }}'
        {%- endif %}
    {%- endfor %}
        when _is_duplicate then 'duplicate {{ spec["key"] }}'
    {%- if spec.get("references_customers") %}
        when not _known_customer then '{{ unknown_customer_reason() }}'
    {%- endif %}
    end
{%- endmacro %}

{#- The common table expressions `landed` (the file as landed) and `checked` (every landed
    row, typed, with its _source_row and _reason), to follow a `with`. Duplicated keys: the
    first occurrence stays. -#}
{% macro ingest_checked(source_name) -%}
    {%- set spec = var("ingest_sources")[source_name] -%}
    {%- set mapping = ingest_mapping(source_name) -%}
    {%- set types = landed_column_types(source_name) -%}
    {%- set absent = ingest_absent(source_name) -%}
    {%- set key = spec["key"] -%}
landed as (

    select * from {{ source("landing", source_name) }}

),

typed as (

    select
        {%- for column, kind in spec["columns"].items() %}
        {%- set file_column = "landed." ~ quoted_column(mapping[column]) %}
        {%- if column in absent %}
        cast(null as {{ ingest_type(kind) }}) as {{ column }},
        {%- else %}
        {{ ingest_value(kind, file_column, types.get(mapping[column], "VARCHAR")) }} as {{ column }},
        {%- endif %}
        {%- endfor %}
        {#- Only columns that can be unparseable need to know whether the value was blank. #}
        {%- for column, kind in spec["columns"].items() if kind in ("date", "timestamp", "amount") and column not in absent %}
        {%- set file_column = "landed." ~ quoted_column(mapping[column]) %}
        {%- if is_text_type(types.get(mapping[column], "VARCHAR")) %}
        nullif(trim({{ file_column }}), '') is null as _blank_{{ column }},
        {%- else %}
        {{ file_column }} is null as _blank_{{ column }},
        {%- endif %}
        {%- endfor %}
        _source_row
    from landed

),

first_of_duplicates as (

    select {{ key }} as _key, min(_source_row) as _first_row
    from typed
    where {{ key }} is not null
    group by {{ key }}
    having count(*) > 1

),
{%- if spec.get("references_customers") %}

known_customers as (

    {#- raw.customers as loaded before (customers load first): read as the source the
        staging models read, since ingest_customers itself is built from this model. #}
    select customer_id as _known_id from {{ source("raw", "customers") }}

),
{%- endif %}

flagged as (

    select
        typed.*,
        coalesce(typed._source_row <> first_of_duplicates._first_row, false) as _is_duplicate
        {%- if spec.get("references_customers") %},
        known_customers._known_id is not null as _known_customer
        {%- endif %}
    from typed
    left join first_of_duplicates on first_of_duplicates._key = typed.{{ key }}
    {%- if spec.get("references_customers") %}
    left join known_customers on known_customers._known_id = typed.customer_id
    {%- endif %}

),

checked as (

    select *, {{ ingest_reason(spec, absent) }} as _reason
    from flagged

)
{%- endmacro %}

{#- The accepted rows of a source: its canonical columns, typed. In its source's load they
    are read from the load's checked rows (models/ingest/ingest_checked.sql), so the rules run
    once; built otherwise (a dbt build of every model) the rules run here. -#}
{% macro ingest_accepted(source_name) -%}
-- depends_on: {{ ref("ingest_checked") }}
{%- if cadence_var("ingest_source") == source_name %}
with checked as (select * from {{ ref("ingest_checked") }})
{%- else %}
with {{ ingest_checked(source_name) }}
{%- endif %}

select
    {%- for column in var("ingest_sources")[source_name]["columns"] %}
    {{ column }}{{ "," if not loop.last }}
    {%- endfor %}
from checked
where _reason is null
{%- endmacro %}

{#- Pre-hook of a table kept per source (quarantine.rejected_rows, raw._month_fingerprints):
    remove the loaded source's rows before its new ones go in, so a source that now has none
    is emptied too. Runs in the model's transaction; nothing on the first build. -#}
{% macro replace_source() -%}
    {%- if is_incremental() -%}
        {{ adapter.dispatch("replace_source", "segment_cadence")() }}
    {%- endif -%}
{%- endmacro %}

{% macro default__replace_source() -%}
    delete from {{ this }} where source = '{{ cadence_var("ingest_source") }}'
{%- endmacro %}

{#- Spark's Parquet tables take no DELETE: the source is a partition (source_table_config). -#}
{% macro spark__replace_source() -%}
    alter table {{ this }} drop if exists partition (source = '{{ cadence_var("ingest_source") }}')
{%- endmacro %}

{% macro source_table_config() -%}
    {{- return(adapter.dispatch("source_table_config", "segment_cadence")()) -}}
{%- endmacro %}

{% macro default__source_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "append",
                "full_refresh": false, "on_schema_change": "append_new_columns",
                "pre_hook": "{{ replace_source() }}"}) -}}
{%- endmacro %}

{% macro spark__source_table_config() -%}
    {{- return({"materialized": "incremental", "incremental_strategy": "insert_overwrite",
                "partition_by": ["source"], "file_format": "parquet", "full_refresh": false,
                "on_schema_change": "append_new_columns", "pre_hook": "{{ replace_source() }}",
                "contract": {"enforced": false}}) -}}
{%- endmacro %}
