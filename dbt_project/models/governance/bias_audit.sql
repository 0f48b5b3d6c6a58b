{#- The bias audit: for each attribute in governance.yaml bias.attributes (region, age band,
    language) the share of every segment within each group against the segment's overall
    share. disparity_ratio = group share / overall share; a cell is flagged above the bound or
    below its inverse, and only when the group (min_group_customers) and the expected count
    (min_expected_members) are big enough to mean something. Every (group, segment) cell is
    reported, empty ones included. Sensitive attributes never decide membership; this
    watches the outcome. -#}
{{ config(**month_table_config()) }}
{%- set attributes = cadence_var("bias_attributes") if execute else [] %}
{%- set bound = cadence_var("max_disparity_ratio") | float %}
{%- set customers_exist = source_exists("raw", "customers") %}
{%- if execute and customers_exist and attributes %}
    {%- set customers = source("raw", "customers") %}
    {%- set columns = adapter.get_columns_in_relation(customers) | map(attribute="name") | list %}
    {#- (no columns seen: a unit test's fixture stands in for the table) #}
    {%- set missing = attributes | reject("in", columns) | list if columns else [] %}
    {%- if missing %}
        {{ exceptions.raise_compiler_error("bias audit: raw.customers has no column " ~ missing | join(", ")) }}
    {%- endif %}
{%- endif %}

with membership as (

    select customer_id, segment_id
    from {{ source("published", "segment_membership") }}
    where month_end = {{ month_end() }}

),

customers as (

    select *
    from {{ source_if_exists("raw", "customers", {"customer_id": "varchar"}) }}
    where {{ "true" if customers_exist else "false" }}

),

members as (

    {%- for attribute in attributes %}
    {{ "union all" if not loop.first }}
    select
        '{{ attribute }}' as attribute,
        membership.segment_id,
        coalesce(cast(customers.{{ quoted_column(attribute) }} as {{ string_type() }}), 'unknown')
            as group_value
    from membership
    inner join customers on customers.customer_id = membership.customer_id
    {%- else %}
    select
        cast(null as {{ string_type() }}) as attribute,
        cast(null as {{ string_type() }}) as segment_id,
        cast(null as {{ string_type() }}) as group_value
    where false
    {%- endfor %}

),

cells as (

    select attribute, group_value, segment_id, count(*) as members
    from members
    group by attribute, group_value, segment_id

),

groups as (

    select attribute, group_value, count(*) as group_customers
    from members
    group by attribute, group_value

),

overall as (

    select
        attribute,
        segment_id,
        count(*) * {{ float_literal('1.0') }} / sum(count(*)) over (partition by attribute) as overall_share
    from members
    group by attribute, segment_id

),

grid as (

    select
        groups.attribute,
        groups.group_value,
        overall.segment_id,
        groups.group_customers,
        overall.overall_share
    from groups
    inner join overall on overall.attribute = groups.attribute

),

ratios as (

    select
        grid.*,
        coalesce(cells.members, 0) as members,
        coalesce(cells.members, 0) * {{ float_literal('1.0') }} / grid.group_customers as group_share,
        coalesce(cells.members, 0) * {{ float_literal('1.0') }} / grid.group_customers / grid.overall_share
            as disparity_ratio
    from grid
    left join cells
        on cells.attribute = grid.attribute
        and cells.group_value = grid.group_value
        and cells.segment_id = grid.segment_id

),

final as (

    select
        {{ month_end() }} as month_end,
        cast(attribute as {{ string_type() }}) as attribute,
        cast(group_value as {{ string_type() }}) as group_value,
        cast(segment_id as {{ string_type() }}) as segment_id,
        cast(members as bigint) as members,
        cast(group_customers as bigint) as group_customers,
        cast(group_share as double) as group_share,
        cast(overall_share as double) as overall_share,
        cast(disparity_ratio as double) as disparity_ratio,
        (group_customers >= {{ cadence_var("min_group_customers") | int }}
            and group_customers * overall_share >= {{ cadence_var("min_expected_members") | int }}
            and (disparity_ratio > {{ bound }} or disparity_ratio < 1.0 / {{ bound }}))
            as flagged
    from ratios

)

select * from final
