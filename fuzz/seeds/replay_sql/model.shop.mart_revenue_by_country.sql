select country, sum(order_count) as orders, sum(revenue) as revenue
from "test"."raw_analytics"."int_customer_orders"
group by country
