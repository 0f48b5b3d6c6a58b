{#- The refresh's parameters (month, compiled rules, definition version). The pipeline
    passes them as JSON in SEGMENT_CADENCE_DBT_VARS rather than --vars: a change of --vars
    forces dbt to re-parse the whole project on every run, while a changed environment
    variable only re-renders the files that read it. Falls back to the project vars, so
    `dbt build --vars ...` by hand works too. -#}
{% macro cadence_var(name) -%}
    {%- set passed = fromjson(env_var("SEGMENT_CADENCE_DBT_VARS", "{}")) -%}
    {{- return(passed[name] if name in passed else var(name)) -}}
{%- endmacro %}
