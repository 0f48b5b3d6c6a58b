{#- The column is known (not NULL) on every row where `condition` holds: a left join that
    finds nothing, or a factor left out, shows up as the rows it leaves NULL. -#}
{% test known_where(model, column_name, condition) %}
    select *
    from {{ model }}
    where ({{ condition }}) and {{ column_name }} is null
{% endtest %}
