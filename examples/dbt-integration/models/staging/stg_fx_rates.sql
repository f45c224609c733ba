select
    currency,
    rate_to_eur,
    valid_from
from {{ source('landing', 'fx_rates') }}
