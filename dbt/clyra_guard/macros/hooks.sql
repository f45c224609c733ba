{#-
  clyra_guard hooks: one row per dbt invocation phase in clyra_guard.dbt_invocations, which
  `clyra run` reconciles with its journal (docs/dbt/package.md).

    on-run-start: ["{{ clyra_guard.on_run_start() }}"]
    on-run-end:   ["{{ clyra_guard.on_run_end(results) }}"]

  Each hook is ONE statement (a DO block) with a payload of a few hundred bytes: it creates the
  schema and table when they are missing and it may, then inserts. Any error (no permission to
  create the schema or to insert, a read-only replica) becomes a server WARNING and the hook
  still succeeds: the hooks never fail a dbt run. `clyra warehouse install-guards` creates the
  table with INSERT for every role. Hooks are rendered at parse time too: nothing runs unless
  `execute`. Postgres only; on other adapters the hooks render nothing (the wrapper's artifacts
  are the record there).
-#}

{% macro on_run_start() -%}
  {%- if execute and target.type == 'postgres' -%}
    {{ clyra_guard._record_invocation('start', none) }}
  {%- endif -%}
{%- endmacro %}

{% macro on_run_end(results) -%}
  {%- if execute and target.type == 'postgres' -%}
    {#- Counts by status only (success, error, skipped, pass, fail, warn, ...), never per node:
        the per-node record is the wrapper's, from run_results.json and the log. -#}
    {%- set counts = {} -%}
    {%- for r in results -%}
      {%- set s = r.status ~ '' -%}
      {%- do counts.update({s: counts.get(s, 0) + 1}) -%}
    {%- endfor -%}
    {{ clyra_guard._record_invocation('end', {'nodes': results | length, 'status': counts}) }}
  {%- endif -%}
{%- endmacro %}

{% macro _record_invocation(phase, results) -%}
{%- set lit = clyra_guard._sql_string -%}
{%- set run_id = env_var('CLYRA_RUN_ID', '') | trim -%}
do $clyra_guard$
begin
  if to_regclass('clyra_guard.dbt_invocations') is null then
    if to_regnamespace('clyra_guard') is null then
      create schema clyra_guard;
    end if;
    create table if not exists clyra_guard.dbt_invocations (
      invocation_id text        not null,
      clyra_run_id  text,
      phase         text        not null check (phase in ('start', 'end')),
      dbt_version   text,
      target_name   text,
      recorded_at   timestamptz not null default now(),
      results       jsonb
    );
  end if;
  insert into clyra_guard.dbt_invocations
    (invocation_id, clyra_run_id, phase, dbt_version, target_name, results)
  values ({{ lit(invocation_id) }}, {{ lit(run_id if run_id else none) }}, {{ lit(phase) }},
          {{ lit(dbt_version) }}, {{ lit(target.name) }},
          {{ lit(tojson(results)) ~ '::jsonb' if results is not none else 'null' }});
exception when others then
  raise warning 'clyra_guard: dbt invocation % (%) not recorded in clyra_guard.dbt_invocations: % (SQLSTATE %); run `clyra warehouse install-guards` or grant INSERT on the table (docs/dbt/package.md)',
    {{ lit(invocation_id) }}, {{ lit(phase) }}, sqlerrm, sqlstate;
end
$clyra_guard$
{%- endmacro %}
