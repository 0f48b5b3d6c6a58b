{#- The month's spend model and CLV assumptions, kept per month beside its churn fit: the
    Gamma-Gamma parameters fitted in Python on the month's repeat buyers (segment_cadence/
    defs/segments/assets.py, bgnbd_fit), the frequency-spend correlation that checks the
    independence the model assumes, and the horizon and monthly discount rate the
    dictionary sets for CLV. They arrive with the churn fit, as the var bgnbd_fit. -#}
{{ config(**month_table_config()) }}

{%- set fit = cadence_var("bgnbd_fit") -%}
{%- set rows = [fit] if fit else [] %}

select
    {{ month_end() }} as month_end,
    spend_p,
    spend_q,
    spend_gamma,
    spend_log_likelihood,
    spend_n_customers,
    coalesce(spend_converged, false) as spend_converged,
    spend_kept_from,
    spend_frequency_correlation,
    case when spend_q > 1 then spend_p * spend_gamma / (spend_q - 1) end
        as population_mean_spend,
    coalesce(clv_horizon_months, 12) as clv_horizon_months,
    coalesce(clv_monthly_discount_rate, 0.01) as clv_monthly_discount_rate

from (
    {{ vars_rows(rows, {
        "spend_p": "double", "spend_q": "double", "spend_gamma": "double",
        "spend_log_likelihood": "double", "spend_n_customers": "bigint",
        "spend_converged": "boolean", "spend_kept_from": "date",
        "spend_frequency_correlation": "double", "clv_horizon_months": "integer",
        "clv_monthly_discount_rate": "double"}) }}
) as fit
