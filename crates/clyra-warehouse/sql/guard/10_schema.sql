-- Clyra warehouse guards, part 1: the clyra_guard schema, its tables and their privileges.
-- Idempotent: every statement can run again on an installed guard.
-- Privileges: nothing in this schema is readable or writable by PUBLIC, except
-- clyra_guard.dbt_invocations (INSERT and SELECT, see below). Only the installing role (the owner)
-- reads and writes the other tables; grants are added through clyra_guard.register_grant,
-- executable only by the roles given at install time (--granter).

CREATE SCHEMA IF NOT EXISTS clyra_guard;
-- The clyra_guard dbt package's hooks create the schema when it is missing and they may: the
-- installer takes it over, so that the dbt role cannot drop the guard's objects as the schema's
-- owner (a no-op when the installer owns it already; only a superuser can take it from another
-- role, anyone else gets "must be owner of schema clyra_guard").
ALTER SCHEMA clyra_guard OWNER TO CURRENT_USER;
COMMENT ON SCHEMA clyra_guard IS
  'Clyra warehouse guards: mass UPDATE/DELETE/TRUNCATE need an approval (docs/warehouses/guards.md)';
REVOKE ALL ON SCHEMA clyra_guard FROM PUBLIC;
-- USAGE only, so that roles can call the few functions granted to PUBLIC (version, reattach).
GRANT USAGE ON SCHEMA clyra_guard TO PUBLIC;

-- What the installer recorded: policy name and hash, checkpoint, install time.
CREATE TABLE IF NOT EXISTS clyra_guard.settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);

-- Which tables are guarded (glob on `schema.table`, first matching position wins) and how.
CREATE TABLE IF NOT EXISTS clyra_guard.rules (
  position     integer PRIMARY KEY,
  table_glob   text    NOT NULL,
  like_pattern text    NOT NULL,
  max_rows     bigint  CHECK (max_rows >= 0),
  max_percent  numeric CHECK (max_percent >= 0 AND max_percent <= 100),
  mode         text    NOT NULL CHECK (mode IN ('enforce', 'shadow')),
  checkpoint   text,
  CHECK (max_rows IS NOT NULL OR max_percent IS NOT NULL)
);

-- Approvals redeemed by `clyra warehouse grant`: the SHA-256 of the resume token (never the
-- token), what it allows, until when, and whether it was used. One row per approved table; each
-- row lets one statement through.
CREATE TABLE IF NOT EXISTS clyra_guard.grants (
  id             bigserial   PRIMARY KEY,
  token_sha256   bytea       NOT NULL CHECK (octet_length(token_sha256) = 32),
  approval_id    text        NOT NULL,
  token_id       text        NOT NULL,
  checkpoint     text        NOT NULL,
  schema_name    text        NOT NULL,
  table_name     text        NOT NULL,
  operations     text[]      NOT NULL
                 CHECK (operations <@ ARRAY['update', 'delete', 'truncate']::text[]
                        AND cardinality(operations) > 0),
  max_rows       bigint      NOT NULL CHECK (max_rows >= 0),
  expires_at     timestamptz NOT NULL,
  approvers      text[]      NOT NULL,
  granted_by     text        NOT NULL,
  granted_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  used_at        timestamptz,
  used_by        text,
  used_operation text,
  used_rows      bigint,
  UNIQUE (token_sha256, schema_name, table_name)
);

-- The audit trail of statements above a threshold that went through: with an approval
-- (`allowed`) or because the rule is in shadow mode (`shadow`). Blocked statements cannot be
-- recorded here: the error rolls back everything the transaction wrote, and Postgres has no
-- autonomous transactions. They are counted in clyra_guard.blocked_statements (sequences are not
-- transactional) and logged by the server with the error.
CREATE TABLE IF NOT EXISTS clyra_guard.events (
  id               bigserial   PRIMARY KEY,
  at               timestamptz NOT NULL DEFAULT clock_timestamp(),
  schema_name      text        NOT NULL,
  table_name       text        NOT NULL,
  operation        text        NOT NULL,
  rows             bigint      NOT NULL,
  threshold        text        NOT NULL,
  decision         text        NOT NULL CHECK (decision IN ('allowed', 'shadow')),
  approval_id      text,
  db_user          text        NOT NULL,
  application_name text,
  clyra_session    text
);
CREATE INDEX IF NOT EXISTS events_at ON clyra_guard.events (at);

CREATE SEQUENCE IF NOT EXISTS clyra_guard.blocked_statements;

-- dbt invocations of projects that use the clyra_guard dbt package (dbt/clyra_guard,
-- docs/dbt/package.md): its on-run-start and on-run-end hooks insert one row each, and `clyra
-- run` reconciles them with its journal. The hooks create this table themselves where they may
-- (same definition); it is created here so that dbt roles that may not create it can record.
CREATE TABLE IF NOT EXISTS clyra_guard.dbt_invocations (
  invocation_id text        NOT NULL,
  clyra_run_id  text,
  phase         text        NOT NULL CHECK (phase IN ('start', 'end')),
  dbt_version   text,
  target_name   text,
  recorded_at   timestamptz NOT NULL DEFAULT now(),
  results       jsonb
);
-- Owned by the installer, like the schema: the owner of a table can put triggers on it.
ALTER TABLE clyra_guard.dbt_invocations OWNER TO CURRENT_USER;

REVOKE ALL ON ALL TABLES IN SCHEMA clyra_guard FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA clyra_guard FROM PUBLIC;
-- Every dbt role records its invocations, and the wrapper reads them back; the rows are ids,
-- versions and counts by status, nothing secret. No UPDATE or DELETE.
GRANT INSERT, SELECT ON clyra_guard.dbt_invocations TO PUBLIC;
