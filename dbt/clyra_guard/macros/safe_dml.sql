{#-
  clyra_guard SQL-safety macros (docs/dbt/package.md): UPDATE, DELETE and MERGE that count the
  rows they would touch (and the table's rows) BEFORE running, and refuse above the policy's
  threshold unless an approval token registered with `clyra warehouse grant` is supplied.

    safe_update(relation, set, where, commit=false)
    safe_delete(relation, where, commit=false)
    safe_merge(target, source, on, update_set, insert=none, commit=false)

  relation / target: a Relation (this, ref(), source()) or "schema.table".
  set / update_set:  "col = expr, ..." or a mapping {col: expr} (target columns unqualified).
  where / on:        a SQL condition, required ('true' means every row). In safe_merge the target
                     is aliased t and the source s: on="t.id = s.id".
  source:            a Relation, or SQL valid after FROM (a table name, a parenthesised query).
  insert:            none (no WHEN NOT MATCHED), a list of columns (values s.<col>), or a
                     mapping {col: expr}. Inserted rows are not counted: the guard is about
                     rows that exist.
  commit:            commit when done. dbt run-operation rolls back what a macro left open, so
                     pass commit=true there; model hooks are committed by the materialization.

  Each call logs exactly one line, `clyra_guard.decision {json}` (the decision record the wrapper
  puts in the evidence bundle), then runs the statement or raises. They run in the caller's
  transaction (beginning one when none is open) and render nothing, so they can stand in a
  hook: post_hook="{{ clyra_guard.safe_update(this, ...) }}". Nothing runs at parse time.
-#}

{% macro safe_update(relation, set, where, commit=false) -%}
  {%- if execute -%}
    {%- set rel = clyra_guard._relation(relation, 'safe_update') -%}
    {%- set set_sql = clyra_guard._assignments(set, 'safe_update', 'set') -%}
    {%- set where_sql = clyra_guard._condition(where, 'safe_update', 'where') -%}
    {%- set rel_sql = rel.include(database=false) ~ '' -%}
    {%- do clyra_guard._guarded(
          'safe_update', 'update', rel,
          "count(case when (" ~ where_sql ~ ") then 1 end)", rel_sql,
          "update " ~ rel_sql ~ "\n   set " ~ set_sql ~ "\n where " ~ where_sql,
          commit) -%}
  {%- endif -%}
{%- endmacro %}

{% macro safe_delete(relation, where, commit=false) -%}
  {%- if execute -%}
    {%- set rel = clyra_guard._relation(relation, 'safe_delete') -%}
    {%- set where_sql = clyra_guard._condition(where, 'safe_delete', 'where') -%}
    {%- set rel_sql = rel.include(database=false) ~ '' -%}
    {%- do clyra_guard._guarded(
          'safe_delete', 'delete', rel,
          "count(case when (" ~ where_sql ~ ") then 1 end)", rel_sql,
          "delete from " ~ rel_sql ~ "\n where " ~ where_sql,
          commit) -%}
  {%- endif -%}
{%- endmacro %}

{% macro safe_merge(target, source, on, update_set, insert=none, commit=false) -%}
  {%- if execute -%}
    {%- set rel = clyra_guard._relation(target, 'safe_merge', 'target') -%}
    {%- if source is string and source | trim != '' -%}
      {%- set src_sql = source | trim -%}
    {%- elif source is not none and source.identifier is defined -%}
      {%- set src_sql = source.include(database=false) ~ '' -%}
    {%- else -%}
      {{ exceptions.raise_compiler_error("clyra_guard.safe_merge: source must be a relation "
           ~ "or SQL valid after FROM (a table name or a parenthesised query)") }}
    {%- endif -%}
    {%- set on_sql = clyra_guard._condition(on, 'safe_merge', 'on') -%}
    {%- set set_sql = clyra_guard._assignments(update_set, 'safe_merge', 'update_set') -%}
    {%- set rel_sql = rel.include(database=false) ~ '' -%}
    {%- set merge_sql = "merge into " ~ rel_sql ~ " t\nusing " ~ src_sql ~ " s\n   on " ~ on_sql
                        ~ "\n when matched then update set " ~ set_sql -%}
    {%- if insert is mapping and insert | length > 0 -%}
      {%- set cols = [] -%}
      {%- set vals = [] -%}
      {%- for k, v in insert.items() -%}
        {%- do cols.append(adapter.quote(k)) -%}
        {%- do vals.append(v) -%}
      {%- endfor -%}
      {%- set merge_sql = merge_sql ~ "\n when not matched then insert (" ~ cols | join(', ')
                          ~ ") values (" ~ vals | join(', ') ~ ")" -%}
    {%- elif insert is iterable and insert is not string and insert is not mapping
             and insert | length > 0 -%}
      {%- set cols = [] -%}
      {%- set vals = [] -%}
      {%- for c in insert -%}
        {%- do cols.append(adapter.quote(c)) -%}
        {%- do vals.append('s.' ~ adapter.quote(c)) -%}
      {%- endfor -%}
      {%- set merge_sql = merge_sql ~ "\n when not matched then insert (" ~ cols | join(', ')
                          ~ ") values (" ~ vals | join(', ') ~ ")" -%}
    {%- elif insert is not none -%}
      {{ exceptions.raise_compiler_error("clyra_guard.safe_merge: insert must be none, a list "
           ~ "of columns or a mapping {col: expr}") }}
    {%- endif -%}
    {%- do clyra_guard._guarded(
          'safe_merge', 'update', rel,
          "count(case when exists (select 1 from " ~ src_sql ~ " s where " ~ on_sql
            ~ ") then 1 end)",
          rel_sql ~ " t", merge_sql, commit) -%}
  {%- endif -%}
{%- endmacro %}

{#- The guard itself: count, decide, log one line, then run `dml` or raise. -#}
{% macro _guarded(macro_name, op, rel, count_expr, count_from, dml, commit) -%}
  {%- if target.type == 'postgres' and target.get('autocommit') -%}
    {{ exceptions.raise_compiler_error("clyra_guard." ~ macro_name ~ " needs a transaction "
         ~ "(the count, the statement and the approval must commit together): set "
         ~ "autocommit: false in the profile (docs/dbt/package.md)") }}
  {%- endif -%}
  {%- set th = clyra_guard._thresholds() -%}
  {%- set relation_name = rel.schema ~ '.' ~ rel.identifier -%}
  {%- set rel_sql = rel.include(database=false) ~ '' -%}
  {%- set pg = target.type == 'postgres' -%}

  {#- 1. Count. On Postgres the table is locked first (SHARE ROW EXCLUSIVE: reads go on, other
      writers wait until this transaction ends), so the statement touches exactly the rows
      counted. -#}
  {%- call statement('clyra_guard_count', fetch_result=True, auto_begin=True) -%}
    {%- if pg %}
    lock table {{ rel_sql }} in share row exclusive mode;
    select {{ count_expr }} as rows_matched, count(*) as rows_total,
           to_regprocedure('clyra_guard.approval_for(text,regclass,text,bigint)') is not null
             as can_check,
           coalesce(current_setting('clyra.approval', true), '') <> '' as session_token
      from {{ count_from }}
    {%- else %}
    select {{ count_expr }} as rows_matched, count(*) as rows_total
      from {{ count_from }}
    {%- endif %}
  {%- endcall -%}
  {%- set row = load_result('clyra_guard_count')['data'][0] -%}
  {%- set matched = row[0] | int -%}
  {%- set total = row[1] | int -%}
  {%- set can_check = pg and row[2] -%}
  {%- set session_token = pg and row[3] -%}
  {%- set percent = ((matched * 100.0 / total) | round(2)) if total > 0 else 0.0 -%}

  {#- 2. Decide. Above the threshold: more than max_rows, or more than max_percent of the table
      (exactly: matched * 100 > max_percent * total). -#}
  {%- set reasons = [] -%}
  {%- if th.max_rows is not none and matched > th.max_rows -%}
    {%- do reasons.append('more than max_rows_affected ' ~ th.max_rows) -%}
  {%- endif -%}
  {%- if th.max_percent is not none and matched > 0
         and matched * 100 > th.max_percent * total -%}
    {%- do reasons.append('more than max_percent_affected ' ~ th.max_percent ~ '%') -%}
  {%- endif -%}
  {%- set token = clyra_guard._approval_token() -%}
  {%- set approval = {} -%}
  {%- set status = none -%}
  {%- if reasons -%}
    {%- if not (token.token or session_token) -%}
      {%- set status = 'none' -%}
    {%- elif not pg -%}
      {%- set status = 'unsupported' -%}
    {%- elif not can_check -%}
      {%- set status = 'not_installed' -%}
    {%- else -%}
      {%- if token.token -%}
        {#- The token travels once, into this transaction's clyra.approval (as the statement
            trigger of a guarded table expects it); everything after reads it from there. -#}
        {%- call statement('clyra_guard_present', auto_begin=True) -%}
          select set_config('clyra.approval', {{ clyra_guard._sql_string(token.token) }}, true)
        {%- endcall -%}
      {%- endif -%}
      {%- call statement('clyra_guard_approval', fetch_result=True, auto_begin=True) -%}
        select status, approval_id, token_id, token_sha256, max_rows, expires_at::text
          from clyra_guard.approval_for(null,
                                        {{ clyra_guard._sql_string(rel_sql) }}::regclass,
                                        {{ clyra_guard._sql_string(op) }}, {{ matched }})
      {%- endcall -%}
      {%- set a = load_result('clyra_guard_approval')['data'][0] -%}
      {%- set status = a[0] -%}
      {%- do approval.update({'approval_id': a[1], 'token_id': a[2], 'token_sha256': a[3],
                              'max_rows': a[4], 'expires_at': a[5]}) -%}
      {%- if approval.get('token_sha256') and not approval.get('token_id') -%}
        {#- An unregistered token has no id of its own we could trust: name it by its digest. -#}
        {%- do approval.update({'token_id': 'sha256:' ~ approval.get('token_sha256')[:16]}) -%}
      {%- endif -%}
    {%- endif -%}
  {%- endif -%}
  {%- set decision = 'allowed' if not reasons else ('approved' if status == 'valid'
                                                   else 'blocked') -%}

  {#- 3. One log line: the decision record. -#}
  {%- set d = {
        'macro': macro_name, 'model': clyra_guard._caller_id(), 'relation': relation_name,
        'rows_matched': matched, 'rows_total': total, 'percent': percent,
        'max_rows': th.max_rows, 'max_percent': th.max_percent, 'decision': decision} -%}
  {%- if approval.get('token_id') -%}
    {%- do d.update({'token_id': approval.get('token_id'),
                     'token_sha256': approval.get('token_sha256')}) -%}
  {%- endif -%}
  {%- if decision == 'approved' -%}
    {%- do d.update({'approval_id': approval.get('approval_id')}) -%}
  {%- elif decision == 'blocked' -%}
    {%- do d.update({'approval_status': status}) -%}
  {%- endif -%}
  {%- do log('clyra_guard.decision ' ~ tojson(d), info=True) -%}

  {#- 4. Refuse, or run. -#}
  {%- if decision == 'blocked' -%}
    {%- set payload = {'warehouse_guard': {'tables': [relation_name], 'operations': [op],
                                           'max_rows': matched}} -%}
    {{ exceptions.raise_compiler_error(
         "clyra_guard blocked " ~ macro_name ~ " on " ~ relation_name ~ ": it would " ~ op
         ~ " " ~ matched ~ " of the table's " ~ total ~ " rows (" ~ percent ~ "%), "
         ~ reasons | join(' and ') ~ " (thresholds from " ~ th.source ~ "). Nothing was changed.\n"
         ~ clyra_guard._status_text(status, approval, token, relation_name, op, matched) ~ "\n"
         ~ "To run it, request an approval at the checkpoint "
         ~ ("`" ~ th.checkpoint ~ "`" if th.checkpoint
            else "your policy's data_platform.warehouse_guard.checkpoint names")
         ~ " for a payload naming the table, e.g. change.json = " ~ tojson(payload) ~ ":\n"
         ~ "  clyra approvals request --checkpoint <checkpoint> --payload change.json "
         ~ "--requester user:<you> --store ... --tenant ... --policy ... --key ...\n"
         ~ "  clyra approvals approve <approval id> --as user:<approver> ...   (prints the resume token)\n"
         ~ "  clyra warehouse grant --dsn <this database> --token-file token.txt "
         ~ "--payload change.json --policy ... --tenant ... --approvals-store ... --public-key ...\n"
         ~ "then run dbt again with --vars '{clyra_approval: <resume token>}' or "
         ~ "CLYRA_APPROVAL=<resume token> (docs/dbt/package.md).") }}
  {%- endif -%}
  {%- call statement('clyra_guard_dml', auto_begin=True) -%}
    {{ dml }}
  {%- endcall -%}
  {%- set affected = load_result('clyra_guard_dml')['response'].rows_affected -%}
  {%- if op in ('update', 'delete') and macro_name != 'safe_merge'
         and affected is not none and affected > matched -%}
    {{ exceptions.raise_compiler_error("clyra_guard." ~ macro_name ~ " on " ~ relation_name
         ~ " touched " ~ affected ~ " rows, but " ~ matched ~ " were counted before it; "
         ~ "nothing is committed (the transaction fails)") }}
  {%- endif -%}
  {%- if decision == 'approved' -%}
    {%- call statement('clyra_guard_used', fetch_result=True, auto_begin=True) -%}
      {#- clyra.approval still holds the token: the statement trigger of a guarded table
          (clyra warehouse install-guards) found it there too. Used up here unless the trigger
          did already; then cleared for the rest of the transaction. -#}
      select u.used{% if token.token %}, set_config('clyra.approval', '', true){% endif %}
        from (select clyra_guard.approval_used(null,
                       {{ clyra_guard._sql_string(rel_sql) }}::regclass,
                       {{ clyra_guard._sql_string(op) }}, {{ matched }},
                       {{ clyra_guard._sql_string(reasons | join(' and ')) }}) as used
              offset 0) as u
    {%- endcall -%}
  {%- endif -%}
  {%- if commit -%}
    {%- do adapter.commit() -%}
  {%- endif -%}
{%- endmacro %}
