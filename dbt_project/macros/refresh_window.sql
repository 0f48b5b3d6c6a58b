{#- The month being refreshed, as date literals. Every model reads "as of" month_end, so
    re-running an old month gives the same answer even after later data has arrived. -#}
{% macro month_end() -%}
    cast('{{ cadence_var("month_end") }}' as date)
{%- endmacro %}

{% macro previous_month_end() -%}
    cast('{{ cadence_var("previous_month_end") }}' as date)
{%- endmacro %}

{% macro month_start() -%}
    {{ dbt.dateadd("day", 1, previous_month_end()) }}
{%- endmacro %}

{% macro days_before_month_end(days) -%}
    {{ dbt.dateadd("day", -1 * days, month_end()) }}
{%- endmacro %}
