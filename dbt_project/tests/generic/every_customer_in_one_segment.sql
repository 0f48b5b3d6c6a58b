{#- Every customer of the population lands in exactly one segment: nobody dropped,
    nobody counted twice. Returns the offending customers. -#}
{% test every_customer_in_one_segment(model, column_name, population) %}
    with placed as (

        select {{ column_name }} as customer_id, count(*) as placements
        from {{ model }}
        group by {{ column_name }}

    ),

    population as (

        select customer_id from {{ population }}

    )

    select
        coalesce(population.customer_id, placed.customer_id) as customer_id,
        coalesce(placed.placements, 0) as placements
    from population
    full outer join placed on placed.customer_id = population.customer_id
    where placed.customer_id is null
       or population.customer_id is null
       or placed.placements <> 1
{% endtest %}
