select
    customer_id,
    name,
    upper(country) as country,
    signed_up_on
from {{ ref('raw_customers') }}
