-- Clyra warehouse guards, part 2: the functions. Idempotent (CREATE OR REPLACE).
-- Every function that touches the guard's tables is SECURITY DEFINER with a fixed search_path
-- (pg_catalog, pg_temp), and names everything schema-qualified. EXECUTE is revoked from PUBLIC
-- at the end and granted back only for version(), reattach() and the two functions of the dbt
-- package (approval_for, approval_used), which do nothing without the token itself.
--
-- SQLSTATEs (class YG, implementation-defined):
--   YG001  a statement above the guard's threshold, without an approval
--   YG002  clyra.approval holds no approval valid for this statement (unknown, other table,
--          other operation, more rows than approved)
--   YG003  the approval was already used (register_grant: already registered)
--   YG004  the approval expired
--   YG010  register_grant refused its arguments (no such table, bad digest)
--   YG011  DROP TRIGGER of a guard trigger on a guarded table (event trigger)

-- The installed guard version (the doctor checks for this function).
CREATE OR REPLACE FUNCTION clyra_guard.version() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT 'clyra_guard 1' $fn$;

-- Counts the rows of `rel` visible now, stopping at `lim`.
CREATE OR REPLACE FUNCTION clyra_guard.count_upto(rel regclass, lim numeric) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  n bigint;
BEGIN
  IF lim IS NULL THEN
    EXECUTE format('SELECT count(*) FROM %s', rel) INTO n;
  ELSE
    EXECUTE format('SELECT count(*) FROM (SELECT FROM %s LIMIT $1) s', rel)
      INTO n USING least(lim, 9223372036854775807)::bigint;
  END IF;
  RETURN n;
END
$fn$;

-- The statement trigger of guarded tables (AFTER UPDATE / AFTER DELETE with the old rows as
-- the transition table `clyra_old`, BEFORE TRUNCATE).
CREATE OR REPLACE FUNCTION clyra_guard.check_dml() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  op    text := lower(TG_OP);
  qname text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
  r     record;
  g     record;
  n     bigint;
  lim   numeric;
  total numeric;
  why   text;
  what  text;
  tok   text;
  hint  text;
BEGIN
  SELECT * INTO r FROM clyra_guard.rules
   WHERE qname LIKE like_pattern ORDER BY position LIMIT 1;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;

  IF op = 'truncate' THEN
    -- No transition table: count what is about to go, only as far as the thresholds need.
    lim := greatest(coalesce(r.max_rows + 1, 0),
                    CASE WHEN r.max_percent < 100 THEN 1 ELSE 0 END);
    IF lim = 0 THEN
      RETURN NULL;
    END IF;
    n := clyra_guard.count_upto(TG_RELID, lim);
    IF n = 0 THEN
      RETURN NULL;
    END IF;
    IF r.max_rows IS NOT NULL AND n > r.max_rows THEN
      why := format('more than max_rows_affected %s', r.max_rows);
    ELSIF r.max_percent < 100 THEN
      why := format('100%% of the table, more than max_percent_affected %s%%', r.max_percent);
    ELSE
      RETURN NULL;
    END IF;
    what := format('TRUNCATE of %s%s rows on %s', CASE WHEN n >= lim THEN 'at least ' ELSE '' END,
                   n, qname);
  ELSE
    SELECT count(*) INTO n FROM clyra_old;
    IF n = 0 THEN
      RETURN NULL;
    END IF;
    IF r.max_rows IS NOT NULL AND n > r.max_rows THEN
      why := format('more than max_rows_affected %s', r.max_rows);
    ELSIF r.max_percent = 0 THEN
      why := 'more than max_percent_affected 0%';
    ELSIF r.max_percent IS NOT NULL THEN
      -- Above the percentage iff the table held fewer than n * 100 / max_percent rows before
      -- the statement; count the rows visible now (after an UPDATE: as many as before; after a
      -- DELETE: the rest) only that far. Exact, and bounded by the statement's own size.
      lim := ceil(n * 100.0 / r.max_percent) - CASE WHEN op = 'delete' THEN n ELSE 0 END;
      IF lim > 0 THEN
        total := clyra_guard.count_upto(TG_RELID, lim) + CASE WHEN op = 'delete' THEN n ELSE 0 END;
        IF n * 100.0 > r.max_percent * total THEN
          why := format('%s%% of the table''s %s rows, more than max_percent_affected %s%%',
                        round(n * 100.0 / total, 1), total, r.max_percent);
        END IF;
      END IF;
    END IF;
    IF why IS NULL THEN
      RETURN NULL;
    END IF;
    what := format('%s of %s rows on %s', upper(op), n, qname);
  END IF;

  tok := current_setting('clyra.approval', true);
  IF tok IS NULL OR tok = '' THEN
    IF r.mode = 'shadow' THEN
      INSERT INTO clyra_guard.events (schema_name, table_name, operation, rows, threshold,
                                      decision, approval_id, db_user, application_name,
                                      clyra_session)
      VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, op, n, why, 'shadow', NULL, session_user,
              current_setting('application_name', true),
              current_setting('clyra.session', true));
      RETURN NULL;
    END IF;
    PERFORM nextval('clyra_guard.blocked_statements');
    hint := format('get an approval%s for a payload naming %s and %s, register it with '
                   '`clyra warehouse grant`, then run the statement after '
                   'SET LOCAL clyra.approval = ''<resume token>'' (docs/warehouses/guards.md)',
                   coalesce(' at checkpoint `' || r.checkpoint || '`', ''), qname, op);
    RAISE EXCEPTION USING ERRCODE = 'YG001',
      MESSAGE = format('clyra guard blocked %s: %s (rule `%s`)', what, why, r.table_glob),
      HINT = hint;
  END IF;

  -- The session presents a token: it counts only if `clyra warehouse grant` registered its
  -- digest for this table. The digest of a digest, or of anything else, matches nothing.
  SELECT * INTO g FROM clyra_guard.grants
   WHERE token_sha256 = sha256(convert_to(tok, 'UTF8'))
     AND schema_name = TG_TABLE_SCHEMA AND table_name = TG_TABLE_NAME
   FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM nextval('clyra_guard.blocked_statements');
    IF EXISTS (SELECT 1 FROM clyra_guard.grants
                WHERE token_sha256 = sha256(convert_to(tok, 'UTF8'))) THEN
      RAISE EXCEPTION USING ERRCODE = 'YG002',
        MESSAGE = format('clyra guard blocked %s: %s, and the approval in clyra.approval is '
                         'for other tables', what, why),
        HINT = 'request an approval whose payload names this table';
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'YG002',
      MESSAGE = format('clyra guard blocked %s: %s, and clyra.approval holds no registered '
                       'approval', what, why),
      HINT = 'set clyra.approval to the resume token itself, after `clyra warehouse grant` '
             'registered it';
  END IF;
  IF g.used_at IS NOT NULL THEN
    PERFORM nextval('clyra_guard.blocked_statements');
    RAISE EXCEPTION USING ERRCODE = 'YG003',
      MESSAGE = format('clyra guard blocked %s: approval %s was already used at %s (%s of %s '
                       'rows); an approval lets one statement through', what, g.approval_id,
                       g.used_at, upper(g.used_operation), g.used_rows);
  END IF;
  IF g.expires_at <= clock_timestamp() THEN
    PERFORM nextval('clyra_guard.blocked_statements');
    RAISE EXCEPTION USING ERRCODE = 'YG004',
      MESSAGE = format('clyra guard blocked %s: approval %s expired at %s', what,
                       g.approval_id, g.expires_at);
  END IF;
  IF NOT (op = ANY (g.operations)) THEN
    PERFORM nextval('clyra_guard.blocked_statements');
    RAISE EXCEPTION USING ERRCODE = 'YG002',
      MESSAGE = format('clyra guard blocked %s: approval %s allows %s, not %s', what,
                       g.approval_id, array_to_string(g.operations, ', '), op);
  END IF;
  IF op = 'truncate' THEN
    n := clyra_guard.count_upto(TG_RELID, NULL);
  END IF;
  IF n > g.max_rows THEN
    PERFORM nextval('clyra_guard.blocked_statements');
    RAISE EXCEPTION USING ERRCODE = 'YG002',
      MESSAGE = format('clyra guard blocked %s: approval %s allows at most %s rows', what,
                       g.approval_id, g.max_rows);
  END IF;
  UPDATE clyra_guard.grants
     SET used_at = clock_timestamp(), used_by = session_user, used_operation = op,
         used_rows = n
   WHERE id = g.id;
  INSERT INTO clyra_guard.events (schema_name, table_name, operation, rows, threshold, decision,
                                  approval_id, db_user, application_name, clyra_session)
  VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, op, n, why, 'allowed', g.approval_id, session_user,
          current_setting('application_name', true), current_setting('clyra.session', true));
  RETURN NULL;
END
$fn$;

-- Makes `rel`'s guard triggers agree with the rules: attached (and enabled) when a rule
-- matches its `schema.table`, removed otherwise. Returns what it did.
CREATE OR REPLACE FUNCTION clyra_guard.sync_table(rel regclass) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  c       record;
  want    boolean;
  changed boolean := false;
  t       record;
BEGIN
  SELECT cl.relkind, cl.relpersistence, n.nspname, cl.relname INTO c
    FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace
   WHERE cl.oid = rel;
  IF NOT FOUND THEN
    RETURN 'missing';
  END IF;
  IF c.relkind NOT IN ('r', 'p') OR c.relpersistence = 't'
     OR c.nspname IN ('clyra_guard', 'pg_catalog', 'information_schema')
     OR c.nspname LIKE 'pg\_%' THEN
    RETURN 'not guarded';
  END IF;
  want := EXISTS (SELECT 1 FROM clyra_guard.rules
                   WHERE (c.nspname || '.' || c.relname) LIKE like_pattern);
  FOR t IN
    SELECT v.name, v.ddl, tg.oid AS tgoid, tg.tgenabled
      FROM (VALUES
        ('clyra_guard_update', 'AFTER UPDATE ON %s REFERENCING OLD TABLE AS clyra_old'),
        ('clyra_guard_delete', 'AFTER DELETE ON %s REFERENCING OLD TABLE AS clyra_old'),
        ('clyra_guard_truncate', 'BEFORE TRUNCATE ON %s')) AS v(name, ddl)
      LEFT JOIN pg_trigger tg ON tg.tgrelid = rel AND tg.tgname = v.name
  LOOP
    IF want AND t.tgoid IS NULL THEN
      EXECUTE format('CREATE TRIGGER %I ' || t.ddl
                     || ' FOR EACH STATEMENT EXECUTE FUNCTION clyra_guard.check_dml()',
                     t.name, rel);
      changed := true;
    ELSIF want AND t.tgenabled = 'D' THEN
      EXECUTE format('ALTER TABLE %s ENABLE TRIGGER %I', rel, t.name);
      changed := true;
    ELSIF NOT want AND t.tgoid IS NOT NULL THEN
      EXECUTE format('DROP TRIGGER %I ON %s', t.name, rel);
      changed := true;
    END IF;
  END LOOP;
  RETURN CASE
    WHEN want AND changed THEN 'attached'
    WHEN want THEN 'guarded'
    WHEN changed THEN 'detached'
    ELSE 'not guarded' END;
END
$fn$;

-- For dbt post-hooks and anyone else: re-attaches the guard to a table that was recreated.
--   post-hook: "select clyra_guard.reattach('{{ this }}')"
CREATE OR REPLACE FUNCTION clyra_guard.reattach(rel regclass) RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT clyra_guard.sync_table(rel) $fn$;

-- Syncs every table of the database (install).
CREATE OR REPLACE FUNCTION clyra_guard.sync_all() RETURNS TABLE (rel regclass, result text)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT s.rel, s.result
    FROM (SELECT cl.oid::regclass AS rel, clyra_guard.sync_table(cl.oid::regclass) AS result
            FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace
           WHERE cl.relkind IN ('r', 'p')
           ORDER BY n.nspname, cl.relname) s
   WHERE s.result <> 'not guarded'
$fn$;

-- Registers a redeemed approval. Only `clyra warehouse grant` should call this, after it
-- checked the resume token's signature, journal state, single use and payload binding: the
-- database cannot check signatures, so whoever may execute this function is trusted to have
-- done so (install grants EXECUTE to the --granter roles only).
CREATE OR REPLACE FUNCTION clyra_guard.register_grant(
  token_sha256 bytea, approval_id text, token_id text, checkpoint text, tables text[],
  operations text[], max_rows bigint, expires_at timestamptz, approvers text[])
RETURNS TABLE (grant_id bigint, tbl text, guarded boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  rel regclass;
  c   record;
  i   integer := 0;
  t   text;
BEGIN
  IF octet_length(token_sha256) IS DISTINCT FROM 32 THEN
    RAISE EXCEPTION USING ERRCODE = 'YG010', MESSAGE = 'token_sha256 must be 32 bytes';
  END IF;
  IF expires_at <= clock_timestamp() THEN
    RAISE EXCEPTION USING ERRCODE = 'YG004',
      MESSAGE = format('the approval expired at %s', expires_at);
  END IF;
  IF EXISTS (SELECT 1 FROM clyra_guard.grants g WHERE g.token_sha256 = register_grant.token_sha256)
  THEN
    RAISE EXCEPTION USING ERRCODE = 'YG003',
      MESSAGE = format('approval %s is already registered; a resume token registers once',
                       approval_id);
  END IF;
  IF cardinality(tables) IS NULL OR cardinality(tables) = 0 THEN
    RAISE EXCEPTION USING ERRCODE = 'YG010', MESSAGE = 'no table given';
  END IF;
  -- Names are resolved here, as the owner: granters need no privileges on the tables.
  FOREACH t IN ARRAY tables LOOP
    rel := to_regclass(t);
    SELECT n.nspname, cl.relname INTO c
      FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE cl.oid = rel;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'YG010', MESSAGE = format('no such table `%s`', t),
        DETAIL = format('JSON pointer /warehouse_guard/tables/%s of the approved payload', i);
    END IF;
    i := i + 1;
    INSERT INTO clyra_guard.grants AS g (token_sha256, approval_id, token_id, checkpoint,
                                         schema_name, table_name, operations, max_rows,
                                         expires_at, approvers, granted_by)
    VALUES (register_grant.token_sha256, register_grant.approval_id, register_grant.token_id,
            register_grant.checkpoint, c.nspname, c.relname, register_grant.operations,
            register_grant.max_rows, register_grant.expires_at, register_grant.approvers,
            session_user)
    RETURNING g.id INTO grant_id;
    tbl := rel::text;
    guarded := EXISTS (SELECT 1 FROM clyra_guard.rules r
                        WHERE (c.nspname || '.' || c.relname) LIKE r.like_pattern);
    RETURN NEXT;
  END LOOP;
END
$fn$;

-- For the clyra_guard dbt package (dbt/clyra_guard, docs/dbt/package.md): its safe_update,
-- safe_delete and safe_merge macros count the rows a statement would touch before running it;
-- above the policy's threshold they ask here whether `tok` (NULL: the session's clyra.approval)
-- is an approval `clyra warehouse grant` registered for `rel`, allowing `op` on `n` rows, unused
-- and unexpired. Nothing is used up here; a grant found is locked (FOR UPDATE) until the
-- transaction ends, so the statement and approval_used() after it see it unchanged.
-- status: none (no token), unknown, other_table (registered for other tables only), used,
-- expired, operation (not allowed), rows (more than approved), valid. A caller must hold the
-- token itself (its digest matches nothing), so EXECUTE is granted to PUBLIC.
CREATE OR REPLACE FUNCTION clyra_guard.approval_for(tok text, rel regclass, op text, n bigint)
RETURNS TABLE (status text, approval_id text, token_id text, token_sha256 text, max_rows bigint,
               expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t text := coalesce(tok, current_setting('clyra.approval', true));
  d bytea;
  c record;
  g record;
BEGIN
  IF t IS NULL OR t = '' THEN
    status := 'none';
    RETURN NEXT;
    RETURN;
  END IF;
  d := sha256(convert_to(t, 'UTF8'));
  token_sha256 := encode(d, 'hex');
  SELECT ns.nspname, cl.relname INTO c
    FROM pg_class cl JOIN pg_namespace ns ON ns.oid = cl.relnamespace WHERE cl.oid = rel;
  SELECT * INTO g FROM clyra_guard.grants gr
   WHERE gr.token_sha256 = d AND gr.schema_name = c.nspname AND gr.table_name = c.relname
   FOR UPDATE;
  IF NOT FOUND THEN
    SELECT gr.approval_id, gr.token_id INTO approval_id, token_id
      FROM clyra_guard.grants gr WHERE gr.token_sha256 = d ORDER BY gr.id LIMIT 1;
    status := CASE WHEN FOUND THEN 'other_table' ELSE 'unknown' END;
    RETURN NEXT;
    RETURN;
  END IF;
  approval_id := g.approval_id;
  token_id := g.token_id;
  max_rows := g.max_rows;
  expires_at := g.expires_at;
  status := CASE
    WHEN g.used_at IS NOT NULL THEN 'used'
    WHEN g.expires_at <= clock_timestamp() THEN 'expired'
    WHEN op IS NULL OR NOT (op = ANY (g.operations)) THEN 'operation'
    WHEN n IS NULL OR n > g.max_rows THEN 'rows'
    ELSE 'valid' END;
  RETURN NEXT;
END
$fn$;

-- Uses up the grant approval_for() found valid, once the macro's statement ran (`n` rows, the
-- threshold it exceeded), with an audit row in clyra_guard.events, like the statement trigger
-- does. When the table's guard trigger already used it for that statement (in this transaction:
-- approval_for's lock kept everyone else out), there is nothing left to do. Returns `used`
-- or `used by the guard trigger`; raises YG002-YG004 like the trigger.
CREATE OR REPLACE FUNCTION clyra_guard.approval_used(tok text, rel regclass, op text, n bigint,
                                                     threshold text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t text := coalesce(tok, current_setting('clyra.approval', true));
  c record;
  g record;
BEGIN
  SELECT ns.nspname, cl.relname INTO c
    FROM pg_class cl JOIN pg_namespace ns ON ns.oid = cl.relnamespace WHERE cl.oid = rel;
  SELECT * INTO g FROM clyra_guard.grants gr
   WHERE gr.token_sha256 = sha256(convert_to(coalesce(t, ''), 'UTF8'))
     AND gr.schema_name = c.nspname AND gr.table_name = c.relname
   FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'YG002',
      MESSAGE = format('clyra guard: no approval registered for %s.%s holds this token',
                       c.nspname, c.relname);
  END IF;
  IF g.used_at IS NOT NULL THEN
    IF g.used_at >= now() AND g.used_by = session_user THEN
      RETURN 'used by the guard trigger';
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'YG003',
      MESSAGE = format('clyra guard: approval %s was already used at %s (%s of %s rows); an '
                       'approval lets one statement through', g.approval_id, g.used_at,
                       upper(g.used_operation), g.used_rows);
  END IF;
  IF g.expires_at <= clock_timestamp() THEN
    RAISE EXCEPTION USING ERRCODE = 'YG004',
      MESSAGE = format('clyra guard: approval %s expired at %s', g.approval_id, g.expires_at);
  END IF;
  IF op IS NULL OR NOT (op = ANY (g.operations)) OR n IS NULL OR n > g.max_rows THEN
    RAISE EXCEPTION USING ERRCODE = 'YG002',
      MESSAGE = format('clyra guard: approval %s allows %s on at most %s rows, not %s of %s rows',
                       g.approval_id, array_to_string(g.operations, ', '), g.max_rows,
                       upper(op), n);
  END IF;
  UPDATE clyra_guard.grants
     SET used_at = clock_timestamp(), used_by = session_user, used_operation = op, used_rows = n
   WHERE id = g.id;
  INSERT INTO clyra_guard.events (schema_name, table_name, operation, rows, threshold, decision,
                                  approval_id, db_user, application_name, clyra_session)
  VALUES (c.nspname, c.relname, op, n, coalesce(threshold, 'above the dbt policy threshold'),
          'allowed', g.approval_id, session_user, current_setting('application_name', true),
          current_setting('clyra.session', true));
  RETURN 'used';
END
$fn$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA clyra_guard FROM PUBLIC;
GRANT EXECUTE ON FUNCTION clyra_guard.version() TO PUBLIC;
GRANT EXECUTE ON FUNCTION clyra_guard.reattach(regclass) TO PUBLIC;
GRANT EXECUTE ON FUNCTION clyra_guard.approval_for(text, regclass, text, bigint) TO PUBLIC;
GRANT EXECUTE ON FUNCTION clyra_guard.approval_used(text, regclass, text, bigint, text) TO PUBLIC;
