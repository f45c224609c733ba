select
    order_id,
    customer_id,
    ordered_at,
    upper(currency) as currency,
    amount,
    status
from {{ ref('raw_orders') }}
