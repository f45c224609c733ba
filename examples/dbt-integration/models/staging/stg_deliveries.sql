-- The carrier's delivery feed: one row per delivered order.
select
    order_id,
    delivered_at,
    carrier
from {{ ref('raw_deliveries') }}
