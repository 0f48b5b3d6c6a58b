{#- Tables whose rows are decided in Python and arrive as vars (SEGMENT_CADENCE_DBT_VARS):
    the month's BG/NBD fit (models/churn) and the dictionary of the definition version in
    force (models/definitions). dbt declares and keeps the table; Python only decides what
    goes in it. -#}

{#- `rows` (a list of {column: value}) as a relation with the {column: type} of `columns`, in
    that order; a column a row lacks is NULL. No rows: an empty relation of the same types. -#}
{% macro vars_rows(rows, columns) -%}
    {%- if rows | length == 0 -%}
    select {% for name, type in columns.items() -%}
        {{ var_literal(none, type) }} as {{ name }}{{ ", " if not loop.last }}
    {%- endfor %}
    where 1 = 0
    {%- else -%}
    {%- for row in rows %}
    select {% for name, type in columns.items() -%}
        {{ var_literal(row.get(name), type) }} as {{ name }}{{ ", " if not loop.last }}
    {%- endfor %}
    {%- if not loop.last %} union all {%- endif %}
    {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#- One value of the vars as a typed SQL literal: varchar, boolean, integer, bigint, double,
    date or timestamp (dates and timestamps as ISO text). Numbers come as JSON numbers and are
    written as Python writes them (the shortest text that reads back to the same double). -#}
{% macro var_literal(value, type) -%}
    {%- set sql_type = string_type() if type == "varchar" else type -%}
    {%- if value is none -%}
        cast(null as {{ sql_type }})
    {%- elif type == "varchar" -%}
        {{ text_literal(value) }}
    {%- elif type == "boolean" -%}
        {{ "true" if value else "false" }}
    {%- elif type in ("date", "timestamp") -%}
        cast('{{ value }}' as {{ type }})
    {%- elif type in ("integer", "bigint") -%}
        cast({{ value | int }} as {{ type }})
    {%- else -%}
        cast({{ value | float }} as {{ sql_type }})
    {%- endif -%}
{%- endmacro %}

{#- A text literal, quoted for the engine: DuckDB doubles a single quote; Spark reads a
    backslash escape (two adjacent quotes there would join two literals). -#}
{% macro text_literal(value) -%}
    {{- return(adapter.dispatch("text_literal", "segment_cadence")(value)) -}}
{%- endmacro %}

{% macro default__text_literal(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{% macro spark__text_literal(value) -%}
    '{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}
