{#- No two rows share these columns (the key of a table kept per month: a re-run of a month
    replaces its rows, never adds to them). -#}
{% test unique_combination(model, columns) %}
    select {{ columns | join(", ") }}, count(*) as rows_with_this_key
    from {{ model }}
    group by {{ columns | join(", ") }}
    having count(*) > 1
{% endtest %}
