{#- Helpers of the clyra_guard package; not part of its interface (names start with `_`). -#}

{#- A Postgres string literal that is also safe inside dollar quoting (the hooks' DO block):
    E'...' with backslash, quote and dollar escaped. None gives null. -#}
{% macro _sql_string(value) -%}
  {%- if value is none -%}null{%- else -%}
  E'{{ (value ~ '') | replace('\\', '\\\\') | replace("'", "\\'") | replace('$', '\\x24') }}'
  {%- endif -%}
{%- endmacro %}

{#- The thresholds, from the first of: env CLYRA_GUARD_POLICY (JSON, set by `clyra run` from the
    policy's data_platform.warehouse_guard), var clyra_guard, the defaults. The first source
    present decides both: a key it leaves out (or null) turns that check off. -#}
{% macro _thresholds() -%}
  {%- set raw = env_var('CLYRA_GUARD_POLICY', '') | trim -%}
  {%- if raw != '' -%}
    {%- set p = fromjson(raw) -%}
    {%- set source = 'env CLYRA_GUARD_POLICY' -%}
    {%- if p is not mapping -%}
      {{ exceptions.raise_compiler_error(
           "clyra_guard: env CLYRA_GUARD_POLICY is not a JSON object like "
           ~ '{"max_rows_affected": 1000, "max_percent_affected": 50}: `' ~ raw[:200] ~ '`') }}
    {%- endif -%}
  {%- elif var('clyra_guard', none) is not none -%}
    {%- set p = var('clyra_guard') -%}
    {%- set source = 'var clyra_guard' -%}
    {%- if p is not mapping -%}
      {{ exceptions.raise_compiler_error(
           "clyra_guard: var clyra_guard must be a mapping like "
           ~ "{max_rows_affected: 1000, max_percent_affected: 50}, not `" ~ p ~ "`") }}
    {%- endif -%}
  {%- else -%}
    {%- set p = {'max_rows_affected': 1000, 'max_percent_affected': 50} -%}
    {%- set source = 'the clyra_guard defaults' -%}
  {%- endif -%}
  {%- set max_rows = p.get('max_rows_affected') -%}
  {%- set max_percent = p.get('max_percent_affected') -%}
  {%- if max_rows is not none and not (max_rows is integer and max_rows >= 0) -%}
    {{ exceptions.raise_compiler_error("clyra_guard: max_rows_affected in " ~ source
         ~ " must be a non-negative integer, not `" ~ max_rows ~ "`") }}
  {%- endif -%}
  {%- if max_percent is not none and (max_percent is boolean or max_percent is not number
         or max_percent < 0 or max_percent > 100) -%}
    {{ exceptions.raise_compiler_error("clyra_guard: max_percent_affected in " ~ source
         ~ " must be a number from 0 to 100, not `" ~ max_percent ~ "`") }}
  {%- endif -%}
  {{ return({'max_rows': max_rows, 'max_percent': max_percent, 'source': source,
             'checkpoint': p.get('checkpoint')}) }}
{%- endmacro %}

{#- The approval token: var clyra_approval, else env CLYRA_APPROVAL; none when neither is set
    (the session setting clyra.approval is read by the database itself). -#}
{% macro _approval_token() -%}
  {%- set v = var('clyra_approval', none) -%}
  {%- if v is not none and (v ~ '') | trim != '' -%}
    {{ return({'token': (v ~ '') | trim, 'source': 'var clyra_approval'}) }}
  {%- endif -%}
  {%- set e = env_var('CLYRA_APPROVAL', '') | trim -%}
  {%- if e != '' -%}
    {{ return({'token': e, 'source': 'env CLYRA_APPROVAL'}) }}
  {%- endif -%}
  {{ return({'token': none, 'source': none}) }}
{%- endmacro %}

{#- A relation argument: a Relation (this, ref(), source(), api.Relation.create()) or the
    string "schema.table" (in the target's database). -#}
{% macro _relation(relation, macro_name, arg='relation') -%}
  {%- if relation is string -%}
    {%- set parts = relation.split('.') -%}
    {%- if parts | length != 2 or parts[0] == '' or parts[1] == '' -%}
      {{ exceptions.raise_compiler_error("clyra_guard." ~ macro_name ~ ": " ~ arg
           ~ " must be a relation (this, ref(...), source(...)) or \"schema.table\", not `"
           ~ relation ~ "`") }}
    {%- endif -%}
    {{ return(api.Relation.create(database=target.database, schema=parts[0],
                                  identifier=parts[1], type='table')) }}
  {%- elif relation is none or relation.identifier is not defined -%}
    {{ exceptions.raise_compiler_error("clyra_guard." ~ macro_name ~ ": " ~ arg
         ~ " must be a relation (this, ref(...), source(...)) or \"schema.table\"") }}
  {%- endif -%}
  {{ return(relation) }}
{%- endmacro %}

{#- SET assignments: a string ("a = 1, b = s.b") or a mapping {column: SQL expression}. -#}
{% macro _assignments(value, macro_name, arg) -%}
  {%- if value is mapping and value | length > 0 -%}
    {%- set items = [] -%}
    {%- for k, v in value.items() -%}
      {%- do items.append(adapter.quote(k) ~ ' = ' ~ v) -%}
    {%- endfor -%}
    {{ return(items | join(', ')) }}
  {%- elif value is string and value | trim != '' -%}
    {{ return(value | trim) }}
  {%- endif -%}
  {{ exceptions.raise_compiler_error("clyra_guard." ~ macro_name ~ ": " ~ arg
       ~ " must be a non-empty string (\"col = expr, ...\") or a mapping {col: expr}") }}
{%- endmacro %}

{#- A condition; required, so that a forgotten WHERE is an error, not a full-table write
    ('true' says "every row" on purpose). -#}
{% macro _condition(value, macro_name, arg) -%}
  {%- if value is string and value | trim != '' -%}
    {{ return(value | trim) }}
  {%- endif -%}
  {{ exceptions.raise_compiler_error("clyra_guard." ~ macro_name ~ ": " ~ arg
       ~ " is required (a SQL condition; 'true' for every row)") }}
{%- endmacro %}

{#- The node calling the macro: a model's unique_id, or the macro's for run-operation. -#}
{% macro _caller_id() -%}
  {%- if model is defined and model is not none and model.unique_id is defined -%}
    {{ return(model.unique_id) }}
  {%- endif -%}
  {{ return('') }}
{%- endmacro %}

{#- What a token status means, for the refusal message. -#}
{% macro _status_text(status, approval, token, relation_name, op, matched) -%}
  {%- set who = "The approval token from " ~ token.source if token.source
                else "The approval token in the session setting clyra.approval" -%}
  {%- set ids = [] -%}
  {%- if approval.get('token_id') -%}{%- do ids.append('token_id ' ~ approval.get('token_id')) -%}{%- endif -%}
  {%- if approval.get('approval_id') -%}{%- do ids.append('approval ' ~ approval.get('approval_id')) -%}{%- endif -%}
  {%- set tid = ' (' ~ ids | join(', ') ~ ')' if ids else '' -%}
  {%- set texts = {
    'none': "No approval token was supplied.",
    'unknown': who ~ tid ~ " is not registered in clyra_guard.grants: only a token that "
               ~ "`clyra warehouse grant` registered counts.",
    'other_table': who ~ tid ~ " is registered for other tables, not " ~ relation_name ~ ".",
    'used': who ~ tid ~ " was already used for " ~ relation_name
               ~ "; an approval lets one statement per table through.",
    'expired': who ~ tid ~ " expired at " ~ approval.get('expires_at') ~ ".",
    'operation': who ~ tid ~ " does not allow " ~ op ~ " on " ~ relation_name ~ ".",
    'rows': who ~ tid ~ " allows at most " ~ approval.get('max_rows') ~ " rows, not "
               ~ matched ~ ".",
    'not_installed': who ~ " cannot be checked: the guard's functions "
               ~ "(clyra_guard.approval_for) are not installed in this database; run "
               ~ "`clyra warehouse install-guards` (docs/warehouses/guards.md).",
    'unsupported': who ~ " cannot be checked: approvals are registered and checked on "
               ~ "Postgres only; on " ~ target.type ~ " everything above the threshold is "
               ~ "refused (docs/dbt/package.md).",
  } -%}
  {{ return(texts.get(status, who ~ tid ~ " was refused (" ~ status ~ ").")) }}
{%- endmacro %}
