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

{#- The same dates as Python dates, for literals computed when the SQL is compiled (filters on
    plain date literals let the engine skip data by date). -#}
{% macro cadence_day(name) -%}
    {{- return(modules.datetime.date.fromisoformat(cadence_var(name))) -}}
{%- endmacro %}

{% macro date_literal(day) -%}
    cast('{{ day.isoformat() }}' as date)
{%- endmacro %}

{% macro next_month_start(day) -%}
    {{- return(modules.datetime.date(day.year + day.month // 12, day.month % 12 + 1, 1)) -}}
{%- endmacro %}

{#- The first day inside the `days`-day window that ends on month_end (the window is
    month_end - days < date <= month_end), and the first whole month inside it. The window
    starts on the 1st of a month unless a 29 February falls inside it (or the window is not a
    whole number of months, such as 90 days). -#}
{% macro window_first_day(days) -%}
    {{- return(cadence_day("month_end") - modules.datetime.timedelta(days=days - 1)) -}}
{%- endmacro %}

{% macro first_whole_month(days) -%}
    {%- set first = window_first_day(days) -%}
    {{- return(first if first.day == 1 else next_month_start(first)) -}}
{%- endmacro %}
