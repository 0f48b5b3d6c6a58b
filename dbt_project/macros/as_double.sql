{#- An expression as DOUBLE, so that a quotient is floating point on every engine. DuckDB
    divides in DOUBLE whatever the operands; Spark SQL keeps DECIMAL operands (1.0, 7.0,
    365.25) in DECIMAL and rounds the quotient to 6 decimal places, which would move bgnbd_T,
    P(alive) and the rates away from the DuckDB values. (dbt.type_float() is no help: FLOAT is
    single precision on both engines.) An engine that spells DOUBLE differently adds an
    <adapter>__as_double macro. -#}
{% macro as_double(expression) -%}
    {{- return(adapter.dispatch("as_double", "segment_cadence")(expression)) -}}
{%- endmacro %}

{% macro default__as_double(expression) -%}
    cast({{ expression }} as double)
{%- endmacro %}
