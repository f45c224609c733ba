-- Removes Clyra warehouse guards: the event triggers, every guard trigger, and the clyra_guard
-- schema with its rules, grants and audit events. Idempotent.
DROP EVENT TRIGGER IF EXISTS clyra_guard_reattach;
DROP EVENT TRIGGER IF EXISTS clyra_guard_keep;
DO $do$
DECLARE
  t record;
BEGIN
  FOR t IN
    SELECT tg.tgname, tg.tgrelid::regclass AS rel
      FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid
      JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'clyra_guard'
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
  END LOOP;
END
$do$;
DROP SCHEMA IF EXISTS clyra_guard CASCADE;
