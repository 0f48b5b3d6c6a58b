{#- What the month's churn model expects of a customer who is still alive, per distinct
    (x, T) of the month's buyers (T in whole days, so both engines join on it exactly): purchases in the next 12 months, and the purchases of the
    CLV horizon each discounted by its month. Computed in Python (the hypergeometric function
    is in neither engine's SQL: segment_cadence/defs/segments/outlook.py), written as the
    Parquet file the var purchase_outlook_file names; customer_features multiplies them by
    the P(alive) it scores. No file (a month without churn parameters): no rows. -#}
{{ config(**month_table_config()) }}

{%- set file = cadence_var("purchase_outlook_file") %}

select
    {{ month_end() }} as month_end,
    cast(outlook.bgnbd_x as {{ dbt.type_bigint() }}) as bgnbd_x,
    cast(outlook.bgnbd_T_days as {{ dbt.type_bigint() }}) as bgnbd_T_days,
    {{ as_double("outlook.alive_purchases_12m") }} as alive_purchases_12m,
    {{ as_double("outlook.discounted_alive_purchases") }} as discounted_alive_purchases

from
    {%- if file %} {{ parquet_relation(file) }}
    {%- else %} ({{ vars_rows([], {"bgnbd_x": "bigint", "bgnbd_T_days": "bigint",
                                  "alive_purchases_12m": "double",
                                  "discounted_alive_purchases": "double"}) }})
    {%- endif %} as outlook
