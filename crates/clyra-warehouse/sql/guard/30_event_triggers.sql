-- Clyra warehouse guards, part 3: event triggers (need a superuser; installed when the
-- installing role is one, skipped otherwise: then use the dbt post-hook
-- `select clyra_guard.reattach('{{ this }}')`).
--
-- clyra_guard_reattach (ddl_command_end): after CREATE TABLE, CREATE TABLE AS, SELECT INTO and
-- ALTER TABLE (which includes RENAME and DISABLE TRIGGER), the tables the command touched are
-- synced with the rules: a table dbt recreated under a guarded name gets its guard back, and a
-- guard trigger someone disabled is enabled again.
-- clyra_guard_keep (sql_drop): DROP TRIGGER of a guard trigger on a table a rule still matches
-- is refused, except for the guard's owner and superusers (uninstall, install).

CREATE OR REPLACE FUNCTION clyra_guard.on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  obj record;
BEGIN
  FOR obj IN
    SELECT DISTINCT objid FROM pg_event_trigger_ddl_commands()
     WHERE object_type = 'table' AND schema_name IS DISTINCT FROM 'clyra_guard'
  LOOP
    PERFORM clyra_guard.reattach(obj.objid::regclass);
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION clyra_guard.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  obj record;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user
                AND (rolsuper OR oid = (SELECT nspowner FROM pg_namespace
                                         WHERE nspname = 'clyra_guard'))) THEN
    RETURN;
  END IF;
  FOR obj IN
    SELECT address_names FROM pg_event_trigger_dropped_objects()
     WHERE object_type = 'trigger' AND original
       AND address_names[3] IN ('clyra_guard_update', 'clyra_guard_delete',
                                'clyra_guard_truncate')
  LOOP
    IF clyra_guard.reattach(format('%I.%I', obj.address_names[1],
                                   obj.address_names[2])::regclass) <> 'not guarded' THEN
      RAISE EXCEPTION USING ERRCODE = 'YG011',
        MESSAGE = format('clyra guard: trigger %s on %s.%s guards this table and cannot be '
                         'dropped', obj.address_names[3], obj.address_names[1],
                         obj.address_names[2]),
        HINT = 'change the guard''s rules (clyra warehouse install-guards --tables ...) or '
               'uninstall it (clyra warehouse uninstall-guards)';
    END IF;
  END LOOP;
END
$fn$;

GRANT EXECUTE ON FUNCTION clyra_guard.on_ddl_end() TO PUBLIC;
GRANT EXECUTE ON FUNCTION clyra_guard.on_sql_drop() TO PUBLIC;

DROP EVENT TRIGGER IF EXISTS clyra_guard_reattach;
CREATE EVENT TRIGGER clyra_guard_reattach ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE')
  EXECUTE FUNCTION clyra_guard.on_ddl_end();

DROP EVENT TRIGGER IF EXISTS clyra_guard_keep;
CREATE EVENT TRIGGER clyra_guard_keep ON sql_drop
  WHEN TAG IN ('DROP TRIGGER')
  EXECUTE FUNCTION clyra_guard.on_sql_drop();
