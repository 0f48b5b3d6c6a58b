{#- The month's churn-model fit (BG/NBD or the modified BG/NBD, as the dictionary chooses), kept
    per month: fitted in Python (segment_cadence/defs/segments/
    assets.py, bgnbd_fit), kept in the state store between steps and passed here as the var
    bgnbd_fit. A month whose fit failed (too little history) gets a row without parameters;
    a month never fitted gets none. Either way customer_features scores nobody that month. -#}
{{ config(**month_table_config()) }}

{%- set fit = cadence_var("bgnbd_fit") -%}
{%- set rows = [fit] if fit else [] %}

select
    {{ month_end() }} as month_end,
    r,
    alpha,
    a,
    b,
    log_likelihood,
    n_customers,
    converged,
    fitted_at,
    coalesce(model, 'bgnbd') as model,
    kept_from

from (
    {{ vars_rows(rows, {
        "r": "double", "alpha": "double", "a": "double", "b": "double",
        "log_likelihood": "double", "n_customers": "bigint", "converged": "boolean",
        "fitted_at": "timestamp", "model": "varchar", "kept_from": "date"}) }}
) as fit
