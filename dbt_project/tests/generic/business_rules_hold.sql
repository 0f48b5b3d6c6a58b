{#- The dictionary's business rules bind the statistics: for example a high-value customer
    is never placed in a low-priority segment. Rules arrive as vars (checked by
    segment_cadence.defs.dictionary.rules); returns the customers that break one. -#}
{% test business_rules_hold(model, features) %}
    {%- set rules = cadence_var("business_rules") -%}
    {%- if rules | length == 0 %}
    select customer_id from {{ model }} where 1 = 0
    {%- else %}
    {%- for rule in rules %}
    select
        membership.customer_id,
        '{{ rule["id"] }}' as business_rule,
        membership.segment_id
    from {{ model }} as membership
    inner join {{ features }} as features on features.customer_id = membership.customer_id
    where ({{ rule["applies_to"] }})
      and membership.segment_id not in (
        {%- for segment_id in rule["allowed_segments"] -%}
        '{{ segment_id }}'{{ "," if not loop.last }}
        {%- endfor -%}
      )
    {%- if not loop.last %} union all {% endif %}
    {%- endfor %}
    {%- endif %}
{% endtest %}
