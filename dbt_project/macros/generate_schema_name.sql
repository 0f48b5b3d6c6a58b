{#- Where models go. On DuckDB, the configured name as is (staging, build), not
    <target>_<schema>: the warehouse file belongs to this project and the Python side names
    these schemas directly. On other engines (Spark), <target schema>_<name>, so that one
    metastore can hold more than one deployment; the sources in models/staging/_sources.yml
    follow the same rule. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{- return(adapter.dispatch("cadence_schema_name", "segment_cadence")(custom_schema_name)) -}}
{%- endmacro %}

{% macro default__cadence_schema_name(custom_schema_name) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ target.schema }}_{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}

{% macro duckdb__cadence_schema_name(custom_schema_name) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
