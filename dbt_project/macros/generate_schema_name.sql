{#- Use the configured schema name as is (staging, build), not <target>_<schema>:
    the published schema and the Python side name these schemas directly. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
