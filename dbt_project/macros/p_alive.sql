{#- P(alive | x, t_x, T) in closed form, computed in log space so large x or T cannot
    overflow. Portable SQL: CASE, EXP, LN. `model` is a SQL expression naming the churn model:
    - 'bgnbd' (Fader, Hardie & Lee 2005, eq. 11): nobody drops out before a repeat purchase,
        1 / (1 + [x > 0] * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ^ (r + x))
    - 'mbgnbd' (Batislam, Denizel & Filiztekin 2007): a customer may drop out after any
      purchase, so a one-time buyer's P(alive) falls with the silence,
        1 / (1 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ^ (r + x))
    segment_cadence/defs/segments/churn.py computes the same in Python. -#}
{% macro p_alive(x, t_x, T, r, alpha, a, b, model) -%}
    case
        when {{ x }} is null or {{ T }} is null then null
        when {{ model }} = 'mbgnbd' then 1.0 / (1.0 + exp(least(700.0,
            ln({{ a }}) - ln({{ b }} + {{ x }})
            + ({{ r }} + {{ x }}) * ln(({{ alpha }} + {{ T }}) / ({{ alpha }} + {{ t_x }}))
        )))
        when {{ x }} = 0 then 1.0
        else 1.0 / (1.0 + exp(least(700.0,
            ln({{ a }}) - ln({{ b }} + {{ x }} - 1)
            + ({{ r }} + {{ x }}) * ln(({{ alpha }} + {{ T }}) / ({{ alpha }} + {{ t_x }}))
        )))
    end
{%- endmacro %}
