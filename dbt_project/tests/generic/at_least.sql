{#- No value below min_value (NULLs pass: a column may be unknown for some rows). -#}
{% test at_least(model, column_name, min_value) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} < {{ min_value }}
{% endtest %}
