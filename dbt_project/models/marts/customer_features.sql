{#- One row per customer known at month_end: the features segment rules read.
    Customers who never bought keep NULL recency and churn, and zero frequency: the rules
    decide what that means, and the fallback catches whoever no rule places. A customer
    whose signup is unknown (a customers file without it, or no customers file) signed up
    at the first purchase. -#}
with customers as (

    select * from {{ ref('stg_customers') }}

),

purchases as (

    select * from {{ ref('int_customer_purchases') }}

),

engagement as (

    select * from {{ ref('int_customer_engagement') }}

),

campaign_response as (

    select * from {{ ref('int_customer_campaign_response') }}

),

source_data as (

    {#- Whether there are engagement events and campaign sends at all: without them (a
        mapping that leaves the source out) their features are unknown, NULL, not zero, so
        a rule that reads them places nobody rather than everybody-with-zero. -#}
    select
        (select count(*) from (select 1 from {{ ref('stg_engagement_events') }} limit 1)) > 0
            as has_engagement,
        (select count(*) from (select 1 from {{ ref('stg_campaign_sends') }} limit 1)) > 0
            as has_campaign_sends

),

churn_model as (

    select r, alpha, a, b, model
    from {{ ref("bgnbd_params") }}
    where month_end = {{ month_end() }}

),

spend_model as (

    {#- The spend model, when it has a finite mean (q > 1): customer_features prices
        nobody's purchases with one that has not. -#}
    select spend_p, spend_q, spend_gamma
    from {{ ref("value_params") }}
    where month_end = {{ month_end() }} and spend_q > 1

),

outlook as (

    select bgnbd_x, bgnbd_T_days, alive_purchases_12m, discounted_alive_purchases
    from {{ ref("purchase_outlook") }}
    where month_end = {{ month_end() }}

),

joined as (

    select
        customers.customer_id,
        {{ month_end() }} as month_end,
        {{ dbt.datediff('coalesce(customers.signup_date, purchases.first_order_date)', month_end(), 'day') }} as tenure_days,
        purchases.recency_days,
        coalesce(purchases.order_count, 0) as frequency,
        coalesce(purchases.monetary_value, 0) as monetary_value,
        purchases.monetary_value / purchases.order_count as avg_order_value,
        coalesce(purchases.spend_this_month, 0) as spend_this_month,
        coalesce(purchases.spend_365d, 0) as spend_365d,
        coalesce(purchases.orders_365d, 0) as orders_365d,
        case
            when purchases.purchase_days >= 2
                then {{ as_double(dbt.datediff('purchases.first_order_date', 'purchases.last_order_date', 'day')) }}
                    / (purchases.purchase_days - 1)
        end as days_between_purchases,
        case
            when purchases.purchase_days >= 2
                then {{ as_double('purchases.purchase_days - 1') }} * 365.25
                    / {{ dbt.datediff('purchases.first_order_date', 'purchases.last_order_date', 'day') }}
        end as repeat_purchase_velocity,
        case when source_data.has_engagement
            then coalesce(engagement.engagement_events_90d, 0) end as engagement_events_90d,
        case when source_data.has_engagement
            then coalesce(engagement.engagement_channels_90d, 0) end as engagement_channels_90d,
        case when source_data.has_engagement
            then coalesce(engagement.engagement_events_365d, 0) end as engagement_events_365d,
        case when source_data.has_campaign_sends
            then coalesce(campaign_response.campaign_sends_365d, 0) end as campaign_sends_365d,
        case when source_data.has_campaign_sends
            then coalesce(campaign_response.campaign_responses_365d, 0) end as campaign_responses_365d,
        {{ as_double('campaign_response.campaign_responses_365d') }}
            / nullif(campaign_response.campaign_sends_365d, 0) as campaign_response_rate,
        purchases.bgnbd_x,
        purchases.bgnbd_t_x,
        purchases.bgnbd_T,
        {{ p_alive(
            'purchases.bgnbd_x', 'purchases.bgnbd_t_x', 'purchases.bgnbd_T',
            'churn_model.r', 'churn_model.alpha', 'churn_model.a', 'churn_model.b',
            'churn_model.model'
        ) }} as p_alive,
        purchases.mean_repeat_spend,
        {#- Gamma-Gamma's E[spend per purchase | x, m_x]: the population's mean and the
            customer's own, weighted by x (value.expected_spend). -#}
        spend_model.spend_p * (spend_model.spend_gamma
            + case when purchases.bgnbd_x > 0 then purchases.bgnbd_x * purchases.mean_repeat_spend else 0 end)
            / (spend_model.spend_p * purchases.bgnbd_x + spend_model.spend_q - 1) as expected_spend,
        outlook.alive_purchases_12m,
        outlook.discounted_alive_purchases

    from customers
    left join purchases on purchases.customer_id = customers.customer_id
    left join outlook
        on outlook.bgnbd_x = purchases.bgnbd_x
        and outlook.bgnbd_T_days = cast(round(purchases.bgnbd_T * 7) as {{ dbt.type_bigint() }})
    left join spend_model on 1 = 1
    left join engagement on engagement.customer_id = customers.customer_id
    left join campaign_response on campaign_response.customer_id = customers.customer_id
    left join churn_model on 1 = 1
    cross join source_data
    where coalesce(customers.signup_date, purchases.first_order_date) <= {{ month_end() }}

),

rfm_scores as (

    {#- Quintiles among buyers, on a narrow projection: each ntile sorts the buyers by one
        key, so only the key and the customer id travel through the sort. -#}
    select
        customer_id,
        ntile(5) over (order by recency_days desc, customer_id) as r_score,
        ntile(5) over (order by frequency, customer_id) as f_score,
        ntile(5) over (order by monetary_value, customer_id) as m_score

    from joined
    where frequency > 0

),

scored as (

    select
        joined.*,
        1.0 - joined.p_alive as churn_likelihood,
        joined.p_alive * joined.alive_purchases_12m as expected_purchases_12m,
        joined.p_alive * joined.expected_spend * joined.discounted_alive_purchases as clv,
        rfm_scores.r_score,
        rfm_scores.f_score,
        rfm_scores.m_score

    from joined
    left join rfm_scores on rfm_scores.customer_id = joined.customer_id

),

final as (

    select
        customer_id,
        month_end,
        tenure_days,
        recency_days,
        frequency,
        monetary_value,
        avg_order_value,
        spend_this_month,
        spend_365d,
        orders_365d,
        r_score,
        f_score,
        m_score,
        r_score * 100 + f_score * 10 + m_score as rfm_score,
        days_between_purchases,
        repeat_purchase_velocity,
        engagement_events_90d,
        engagement_channels_90d,
        engagement_events_365d,
        campaign_sends_365d,
        campaign_responses_365d,
        campaign_response_rate,
        bgnbd_x,
        bgnbd_t_x,
        bgnbd_T,
        p_alive,
        churn_likelihood,
        mean_repeat_spend,
        expected_purchases_12m,
        expected_spend,
        clv

    from scored

)

select * from final
