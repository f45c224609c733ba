with orders as (
    select * from "test"."raw_analytics"."stg_orders"
)
select c.id as customer_id, c.country, count(o.order_id) as order_count, coalesce(sum(o.amount), 0) as revenue
from "test"."raw_raw"."customers" c
left join orders o on o.customer_id = c.id
group by c.id, c.country
