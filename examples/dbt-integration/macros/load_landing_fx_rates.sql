{#- Stands in for the loader that fills the landing schema in a real warehouse: creates
    <target schema>_landing.fx_rates once, with the rates the marts convert with. -#}
{% macro load_landing_fx_rates() -%}
  {%- if execute -%}
    {%- set landing = target.schema ~ '_landing' -%}
do $landing$
begin
  if to_regnamespace('{{ landing }}') is null then
    create schema {{ adapter.quote(landing) }};
  end if;
  create table if not exists {{ adapter.quote(landing) }}.fx_rates (
    currency    text          primary key,
    rate_to_eur numeric(12,6) not null,
    valid_from  date          not null
  );
  insert into {{ adapter.quote(landing) }}.fx_rates values
    ('EUR', 1.000000, '2026-01-01'), ('GBP', 1.170000, '2026-01-01'),
    ('USD', 0.920000, '2026-01-01'), ('SEK', 0.087000, '2026-01-01')
  on conflict (currency) do nothing;
end
$landing$
  {%- endif -%}
{%- endmacro %}
