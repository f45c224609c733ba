-- Revenue by country. With --vars '{clyra_slow: true}' the query first sleeps clyra_slow_seconds
-- on the server (pg_sleep), so that interrupt tests can stop dbt in the middle of a model.
select
    country,
    count(*) as customers,
    sum(revenue_eur) as revenue_eur
from {{ ref('customer_revenue') }}
{%- if var('clyra_slow', false) %}
cross join lateral (select 1 from pg_sleep({{ var('clyra_slow_seconds', 30) | float }})) as slow (done)
{%- endif %}
group by country
