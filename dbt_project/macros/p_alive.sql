{#- BG/NBD P(alive | x, t_x, T) in closed form (Fader, Hardie & Lee 2005, eq. 11):
        1 / (1 + [x > 0] * a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ^ (r + x))
    computed in log space so large x or T cannot overflow. Portable SQL: CASE, EXP, LN. -#}
{% macro p_alive(x, t_x, T, r, alpha, a, b) -%}
    case
        when {{ x }} is null or {{ T }} is null then null
        when {{ x }} = 0 then 1.0
        else 1.0 / (1.0 + exp(least(700.0,
            ln({{ a }}) - ln({{ b }} + {{ x }} - 1)
            + ({{ r }} + {{ x }}) * ln(({{ alpha }} + {{ T }}) / ({{ alpha }} + {{ t_x }}))
        )))
    end
{%- endmacro %}
