select id as order_id, customer_id, amount, status, ordered_at
from "test"."raw_raw"."orders"
where status <> 'returned'
