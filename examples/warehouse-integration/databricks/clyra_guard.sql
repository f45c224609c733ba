-- Clyra warehouse guard for Databricks (Delta tables, Databricks SQL / DBR 16.3 or newer for SQL
-- scripting and EXECUTE IMMEDIATE). Untested here: no Databricks workspace is reachable from
-- Clyra's CI; see ../README.md for the documented test path.
--
-- Delta has no DML triggers. The guard is a scripted block that counts the rows a predicate
-- selects before running the DML, compares with the rule, requires a registered grant above the
-- threshold, runs the DML with EXECUTE IMMEDIATE, then checks the commit's own operationMetrics
-- (DESCRIBE HISTORY) against the count and records an event with the Delta version (the table's
-- anchor). Blocked attempts are recorded too (nothing was written).
--
-- Enforcement comes from Unity Catalog privileges: guarded principals get SELECT, not MODIFY, on
-- the tables; a job running as the guard's service principal (MODIFY on the tables, nothing
-- else) executes this block with the caller's parameters. A principal with MODIFY can bypass it.
--
-- Grants: register a redeemed approval (after `clyra approvals redeem` accepted the token) with
-- an INSERT into clyra_guard.grants as the granter principal; only the digest is stored.

CREATE SCHEMA IF NOT EXISTS clyra_guard;

CREATE TABLE IF NOT EXISTS clyra_guard.rules (
  position    INT NOT NULL,
  table_glob  STRING NOT NULL,     -- LIKE pattern on catalog.schema.table, e.g. 'prod.analytics.%'
  max_rows    BIGINT,
  max_percent DECIMAL(5, 2),
  checkpoint  STRING
) USING DELTA;

CREATE TABLE IF NOT EXISTS clyra_guard.grants (
  token_sha256 STRING NOT NULL,    -- sha2(token, 256), lowercase hex
  approval_id  STRING NOT NULL,
  table_name   STRING NOT NULL,
  operations   ARRAY<STRING> NOT NULL,
  max_rows     BIGINT NOT NULL,
  expires_at   TIMESTAMP NOT NULL,
  granted_by   STRING NOT NULL,
  used_at      TIMESTAMP,
  used_by      STRING,
  used_rows    BIGINT
) USING DELTA;

CREATE TABLE IF NOT EXISTS clyra_guard.events (
  at            TIMESTAMP NOT NULL,
  table_name    STRING NOT NULL,
  operation     STRING NOT NULL,
  rows          BIGINT NOT NULL,
  decision      STRING NOT NULL,   -- allowed | blocked | under_threshold
  reason        STRING,
  approval_id   STRING,
  db_user       STRING,
  delta_version BIGINT             -- the commit the DML made
) USING DELTA;

-- The guarded statement, as a parameterized block. Run it with named parameters, e.g. from a
-- job task or the SQL Statement Execution API:
--   :tbl 'prod.analytics.orders'  :op 'UPDATE'  :set_clause 'amount = amount + 1'
--   :where_clause 'id <= 960'     :approval NULL or 'clyra-rt1.eyJ...'
BEGIN
  DECLARE n BIGINT;
  DECLARE total BIGINT;
  DECLARE r_max_rows BIGINT;
  DECLARE r_max_percent DECIMAL(5, 2);
  DECLARE reason STRING;
  DECLARE grant_id STRING;
  DECLARE metric BIGINT;
  DECLARE version BIGINT;

  IF upper(:op) NOT IN ('UPDATE', 'DELETE') THEN
    SIGNAL SQLSTATE 'YG010' SET MESSAGE_TEXT = 'clyra guard: op must be UPDATE or DELETE';
  END IF;
  SET (r_max_rows, r_max_percent) = (SELECT max_rows, max_percent FROM clyra_guard.rules
                                      WHERE lower(:tbl) LIKE table_glob ORDER BY position LIMIT 1);
  EXECUTE IMMEDIATE 'SELECT count(*) FROM IDENTIFIER(?) WHERE ' || :where_clause
    INTO n USING :tbl;
  EXECUTE IMMEDIATE 'SELECT count(*) FROM IDENTIFIER(?)' INTO total USING :tbl;
  IF r_max_rows IS NOT NULL AND n > r_max_rows THEN
    SET reason = 'more than max_rows ' || r_max_rows;
  ELSEIF r_max_percent IS NOT NULL AND total > 0 AND n * 100 > r_max_percent * total THEN
    SET reason = round(n * 100 / total, 1) || '% of ' || total || ' rows, more than max_percent '
                 || r_max_percent || '%';
  END IF;
  IF reason IS NOT NULL THEN
    SET grant_id = (SELECT approval_id FROM clyra_guard.grants
                     WHERE token_sha256 = sha2(:approval, 256) AND table_name = lower(:tbl)
                       AND array_contains(operations, lower(:op)) AND used_at IS NULL
                       AND expires_at > current_timestamp() AND n <= max_rows);
    IF grant_id IS NULL THEN
      INSERT INTO clyra_guard.events VALUES (current_timestamp(), lower(:tbl), lower(:op), n,
        'blocked', reason, NULL, current_user(), NULL);
      SIGNAL SQLSTATE 'YG001' SET MESSAGE_TEXT = 'clyra guard blocked the statement: above the threshold without a valid approval (see clyra_guard.events)';
    END IF;
    -- Single use: Delta's optimistic concurrency lets one of two concurrent updates through.
    UPDATE clyra_guard.grants SET used_at = current_timestamp(), used_by = current_user(),
                                  used_rows = n
     WHERE token_sha256 = sha2(:approval, 256) AND table_name = lower(:tbl) AND used_at IS NULL;
  END IF;

  IF upper(:op) = 'UPDATE' THEN
    EXECUTE IMMEDIATE 'UPDATE IDENTIFIER(?) SET ' || :set_clause || ' WHERE ' || :where_clause
      USING :tbl;
  ELSE
    EXECUTE IMMEDIATE 'DELETE FROM IDENTIFIER(?) WHERE ' || :where_clause USING :tbl;
  END IF;
  -- The commit's own count (numUpdatedRows / numDeletedRows) must not exceed what was checked:
  -- rows may have changed between the count and the DML.
  EXECUTE IMMEDIATE 'SELECT version, CAST(coalesce(operationMetrics.numUpdatedRows, '
    || 'operationMetrics.numDeletedRows) AS BIGINT) FROM (DESCRIBE HISTORY IDENTIFIER(?) LIMIT 1)'
    INTO version, metric USING :tbl;
  INSERT INTO clyra_guard.events VALUES (current_timestamp(), lower(:tbl), lower(:op), metric,
    CASE WHEN reason IS NULL THEN 'under_threshold' ELSE 'allowed' END, reason, grant_id,
    current_user(), version);
  IF metric > greatest(n, coalesce(r_max_rows, n)) THEN
    -- Roll the table back to the version before this commit and fail.
    EXECUTE IMMEDIATE 'RESTORE TABLE IDENTIFIER(?) TO VERSION AS OF ' || (version - 1) USING :tbl;
    SIGNAL SQLSTATE 'YG002' SET MESSAGE_TEXT = 'clyra guard: the DML touched more rows than were checked; restored the previous version';
  END IF;
END;
