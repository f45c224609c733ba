{{ config(post_hook="{{ backfill_deliveries() }}") }}
-- depends_on: {{ ref('stg_deliveries') }}
-- One row per order with its amount in EUR. delivered_at is filled by the delivery backfill
-- (macros/backfill_deliveries.sql), which runs only with --vars '{clyra_backfill: true}'.
select
    o.order_id,
    o.customer_id,
    c.country,
    o.ordered_at,
    o.status,
    o.currency,
    o.amount,
    round(o.amount * fx.rate_to_eur, 2) as amount_eur,
    cast(null as timestamp) as delivered_at
from {{ ref('stg_orders') }} as o
join {{ ref('stg_customers') }} as c on c.customer_id = o.customer_id
join {{ ref('stg_fx_rates') }} as fx on fx.currency = o.currency
