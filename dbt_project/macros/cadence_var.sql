{#- The refresh's parameters (month, compiled rules, definition version). The pipeline
    passes them as JSON in SEGMENT_CADENCE_DBT_VARS rather than --vars: a change of --vars
    forces dbt to re-parse the whole project on every run. The variable is read only when
    dbt executes, never while it parses, so it is not part of the parse either: a new month
    re-uses the saved parse as it is (partial parsing with nothing to re-parse). While
    parsing, the project vars stand in; nothing parsed (refs, sources, configs) depends on
    their values. Falls back to the project vars, so `dbt build --vars ...` by hand works too. -#}
{% macro cadence_var(name) -%}
    {%- if execute -%}
        {%- set passed = fromjson(env_var("SEGMENT_CADENCE_DBT_VARS", "{}")) -%}
        {{- return(passed[name] if name in passed else var(name)) -}}
    {%- endif -%}
    {{- return(var(name)) -}}
{%- endmacro %}
