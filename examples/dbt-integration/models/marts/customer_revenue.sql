select
    c.customer_id,
    c.name,
    c.country,
    count(o.order_id) filter (where o.status <> 'cancelled') as orders,
    coalesce(sum(o.amount_eur) filter (where o.status <> 'cancelled'), 0) as revenue_eur,
    min(o.ordered_at) as first_order_at,
    max(o.ordered_at) as last_order_at
from {{ ref('stg_customers') }} as c
left join {{ ref('fct_orders') }} as o on o.customer_id = c.customer_id
group by c.customer_id, c.name, c.country
