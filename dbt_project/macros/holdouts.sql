{#- Holdouts (segment_cadence/defs/segments/holdouts.py, the reference): a customer's draw in
    [0, 1) is the first 32 bits of MD5('<salt>:<customer id>'), so it depends on the salt and
    the id only and stays put month after month and across definition versions. -#}
{% macro holdout_draw(customer_id) -%}
    {{- return(adapter.dispatch("holdout_draw", "segment_cadence")(customer_id)) -}}
{%- endmacro %}

{% macro default__holdout_draw(customer_id) -%}
    (cast(('0x' || substr(md5({{ holdout_salt_literal() }} || ':' || {{ customer_id }}), 1, 8)) as bigint)
        / 4294967296.0)
{%- endmacro %}

{% macro spark__holdout_draw(customer_id) -%}
    (cast(conv(substr(md5(concat({{ holdout_salt_literal() }}, ':', {{ customer_id }})), 1, 8), 16, 10) as bigint)
        / 4294967296.0)
{%- endmacro %}

{% macro holdout_salt_literal() -%}
    '{{ cadence_var("holdout_salt") | replace("'", "''") }}'
{%- endmacro %}

{#- The holdout a member of `segment_id` is in: 'global' (the global control, below the global
    share), 'segment' (below the global share plus the segment's share) or NULL (treated). -#}
{% macro holdout_case(customer_id, segment_id) -%}
    {%- set global_share = cadence_var("holdout_global_share") | float -%}
    {%- set shares = cadence_var("holdout_segment_shares") -%}
    {%- if global_share <= 0 and shares | length == 0 -%}
        cast(null as {{ string_type() }})
    {%- else -%}
    case
        {%- if global_share > 0 %}
        when {{ holdout_draw(customer_id) }} < {{ global_share }} then 'global'
        {%- endif %}
        {%- if shares | length > 0 %}
        when {{ holdout_draw(customer_id) }} < {{ global_share }} + case {{ segment_id }}
            {%- for s in shares %}
            when '{{ s["id"] }}' then {{ s["share"] | float }}
            {%- endfor %}
            else 0 end then 'segment'
        {%- endif %}
    end
    {%- endif -%}
{%- endmacro %}
