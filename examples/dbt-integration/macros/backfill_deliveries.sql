{#- The guarded backfill of the example (README.md): with --vars '{clyra_backfill: true}',
    fct_orders' post-hook merges the carrier's late delivery feed into it, 960 of its 1,010 rows.
    Above the thresholds (vars.clyra_guard or the policy), so clyra_guard.safe_merge refuses it
    unless the run presents an approval registered with `clyra warehouse grant`. -#}
{% macro backfill_deliveries() -%}
  {%- if var('clyra_backfill', false) -%}
    {{ clyra_guard.safe_merge(
         this, ref('stg_deliveries'),
         on='t.order_id = s.order_id',
         update_set={'delivered_at': 's.delivered_at', 'status': "'delivered'"}) }}
  {%- endif -%}
{%- endmacro %}
