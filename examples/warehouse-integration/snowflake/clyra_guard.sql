-- Clyra warehouse guard for Snowflake (untested here: no Snowflake account is reachable from
-- Clyra's CI; see ../README.md for the documented test path).
--
-- Snowflake has no DML triggers, so the guard is a stored procedure that runs the DML for the
-- caller: CLYRA_GUARD.GUARDED_DML(table, operation, set_clause, where_clause, approval). It runs
-- the statement in a transaction, reads SQLROWCOUNT, and commits only if the row count is within
-- the table's rule or the approval is a registered, unused, unexpired grant for this table and
-- operation; otherwise it rolls back, records the block (possible here, unlike Postgres: the
-- rollback comes first) and raises CLYRA_GUARD_BLOCKED.
--
-- Enforcement comes from privileges: roles that should be guarded get USAGE on the procedure and
-- SELECT on their tables, but no UPDATE or DELETE; the procedure runs with its owner's rights
-- (EXECUTE AS OWNER). The owner role should hold DML on the guarded tables and nothing else: the
-- caller's SET and WHERE clauses run with its rights (a subquery in them reads what the owner can
-- read). A role that keeps UPDATE/DELETE can bypass the procedure; for such roles the procedure
-- is a safety net against mistakes, like the Postgres guard is against non-owners.
--
-- Grants: `clyra warehouse grant` does not speak Snowflake yet. Register a redeemed approval by
-- calling CLYRA_GUARD.REGISTER_GRANT as the granter role after `clyra approvals redeem` accepted
-- the token (the same order as on Postgres: redeem first; the digest, never the token, is stored).

CREATE SCHEMA IF NOT EXISTS CLYRA_GUARD;

CREATE TABLE IF NOT EXISTS CLYRA_GUARD.RULES (
  POSITION    INTEGER NOT NULL,
  TABLE_GLOB  VARCHAR NOT NULL,  -- LIKE pattern on DATABASE.SCHEMA.TABLE, e.g. 'PROD.ANALYTICS.%'
  MAX_ROWS    NUMBER(38, 0),
  MAX_PERCENT NUMBER(5, 2),
  CHECKPOINT  VARCHAR
);

CREATE TABLE IF NOT EXISTS CLYRA_GUARD.GRANTS (
  TOKEN_SHA256 VARCHAR NOT NULL,   -- SHA2(token, 256), lowercase hex
  APPROVAL_ID  VARCHAR NOT NULL,
  TABLE_NAME   VARCHAR NOT NULL,   -- fully qualified, upper case
  OPERATIONS   ARRAY   NOT NULL,   -- ['UPDATE'], ['DELETE'], ...
  MAX_ROWS     NUMBER(38, 0) NOT NULL,
  EXPIRES_AT   TIMESTAMP_TZ NOT NULL,
  GRANTED_BY   VARCHAR NOT NULL DEFAULT CURRENT_USER(),
  USED_AT      TIMESTAMP_TZ,
  USED_BY      VARCHAR,
  USED_ROWS    NUMBER(38, 0)
);

CREATE TABLE IF NOT EXISTS CLYRA_GUARD.EVENTS (
  AT          TIMESTAMP_TZ NOT NULL DEFAULT CURRENT_TIMESTAMP(),
  TABLE_NAME  VARCHAR NOT NULL,
  OPERATION   VARCHAR NOT NULL,
  ROWS        NUMBER(38, 0) NOT NULL,
  DECISION    VARCHAR NOT NULL,    -- allowed | blocked
  REASON      VARCHAR,
  APPROVAL_ID VARCHAR,
  DB_USER     VARCHAR,
  ROLE_NAME   VARCHAR,
  SESSION_ID  VARCHAR,
  QUERY_ID    VARCHAR              -- the DML's query id (its Snowflake anchor)
);

CREATE OR REPLACE PROCEDURE CLYRA_GUARD.REGISTER_GRANT(
  TOKEN_SHA256 VARCHAR, APPROVAL_ID VARCHAR, TABLE_NAME VARCHAR, OPERATIONS ARRAY,
  MAX_ROWS NUMBER, EXPIRES_AT TIMESTAMP_TZ)
RETURNS VARCHAR
LANGUAGE SQL
EXECUTE AS OWNER
AS
$$
DECLARE
  bad_grant EXCEPTION (-20010, 'clyra guard: refused grant (bad digest, expired, or already registered)');
BEGIN
  IF (NOT REGEXP_LIKE(:TOKEN_SHA256, '[0-9a-f]{64}') OR :EXPIRES_AT <= CURRENT_TIMESTAMP()
      OR EXISTS (SELECT 1 FROM CLYRA_GUARD.GRANTS WHERE TOKEN_SHA256 = :TOKEN_SHA256)) THEN
    RAISE bad_grant;
  END IF;
  INSERT INTO CLYRA_GUARD.GRANTS (TOKEN_SHA256, APPROVAL_ID, TABLE_NAME, OPERATIONS, MAX_ROWS,
                                  EXPIRES_AT)
    SELECT :TOKEN_SHA256, :APPROVAL_ID, UPPER(:TABLE_NAME), :OPERATIONS, :MAX_ROWS, :EXPIRES_AT;
  RETURN 'registered ' || :APPROVAL_ID;
END;
$$;

CREATE OR REPLACE PROCEDURE CLYRA_GUARD.GUARDED_DML(
  TABLE_NAME VARCHAR, OPERATION VARCHAR, SET_CLAUSE VARCHAR, WHERE_CLAUSE VARCHAR,
  APPROVAL VARCHAR)
RETURNS VARIANT
LANGUAGE SQL
EXECUTE AS OWNER
AS
$$
DECLARE
  blocked EXCEPTION (-20001, 'clyra guard blocked the statement: above the threshold without a valid approval; see CLYRA_GUARD.EVENTS');
  bad_call EXCEPTION (-20002, 'clyra guard: operation must be UPDATE or DELETE, and the table must match a rule');
  op VARCHAR DEFAULT UPPER(:OPERATION);
  tbl VARCHAR DEFAULT UPPER(:TABLE_NAME);
  stmt VARCHAR;
  n NUMBER DEFAULT 0;
  total NUMBER DEFAULT 0;
  max_rows NUMBER;
  max_percent NUMBER;
  reason VARCHAR;
  qid VARCHAR;
  grant_ok BOOLEAN DEFAULT FALSE;
  grant_approval VARCHAR;
BEGIN
  IF (op NOT IN ('UPDATE', 'DELETE')) THEN
    RAISE bad_call;
  END IF;
  SELECT MAX_ROWS, MAX_PERCENT INTO :max_rows, :max_percent FROM CLYRA_GUARD.RULES
   WHERE :tbl LIKE TABLE_GLOB ORDER BY POSITION LIMIT 1;
  IF (max_rows IS NULL AND max_percent IS NULL) THEN
    RAISE bad_call;
  END IF;
  -- Exact row count from the metadata (Snowflake keeps it exact), before the statement.
  SELECT ROW_COUNT INTO :total FROM IDENTIFIER(SPLIT_PART(:tbl, '.', 1) || '.INFORMATION_SCHEMA.TABLES')
   WHERE TABLE_SCHEMA = SPLIT_PART(:tbl, '.', 2) AND TABLE_NAME = SPLIT_PART(:tbl, '.', 3);
  IF (op = 'UPDATE') THEN
    stmt := 'UPDATE IDENTIFIER(''' || tbl || ''') SET ' || SET_CLAUSE || ' WHERE ' || WHERE_CLAUSE;
  ELSE
    stmt := 'DELETE FROM IDENTIFIER(''' || tbl || ''') WHERE ' || WHERE_CLAUSE;
  END IF;

  BEGIN TRANSACTION;
  EXECUTE IMMEDIATE :stmt;
  n := SQLROWCOUNT;
  qid := LAST_QUERY_ID();
  IF (max_rows IS NOT NULL AND n > max_rows) THEN
    reason := 'more than MAX_ROWS ' || max_rows;
  ELSEIF (max_percent IS NOT NULL AND total > 0 AND n * 100 > max_percent * total) THEN
    reason := ROUND(n * 100 / total, 1) || '% of ' || total || ' rows, more than MAX_PERCENT ' || max_percent || '%';
  END IF;
  IF (reason IS NOT NULL AND APPROVAL IS NOT NULL) THEN
    SELECT APPROVAL_ID INTO :grant_approval FROM CLYRA_GUARD.GRANTS
     WHERE TOKEN_SHA256 = SHA2(:APPROVAL, 256) AND TABLE_NAME = :tbl
       AND ARRAY_CONTAINS(:op::VARIANT, OPERATIONS) AND USED_AT IS NULL
       AND EXPIRES_AT > CURRENT_TIMESTAMP() AND :n <= MAX_ROWS;
    IF (grant_approval IS NOT NULL) THEN
      UPDATE CLYRA_GUARD.GRANTS SET USED_AT = CURRENT_TIMESTAMP(), USED_BY = CURRENT_USER(),
                                    USED_ROWS = :n
       WHERE TOKEN_SHA256 = SHA2(:APPROVAL, 256) AND TABLE_NAME = :tbl AND USED_AT IS NULL;
      grant_ok := (SQLROWCOUNT = 1);
    END IF;
  END IF;
  IF (reason IS NOT NULL AND NOT grant_ok) THEN
    ROLLBACK;
    INSERT INTO CLYRA_GUARD.EVENTS (TABLE_NAME, OPERATION, ROWS, DECISION, REASON, DB_USER,
                                    ROLE_NAME, SESSION_ID, QUERY_ID)
      SELECT :tbl, :op, :n, 'blocked', :reason, CURRENT_USER(), CURRENT_ROLE(),
             CURRENT_SESSION(), :qid;
    RAISE blocked;
  END IF;
  IF (reason IS NOT NULL) THEN
    INSERT INTO CLYRA_GUARD.EVENTS (TABLE_NAME, OPERATION, ROWS, DECISION, REASON, APPROVAL_ID,
                                    DB_USER, ROLE_NAME, SESSION_ID, QUERY_ID)
      SELECT :tbl, :op, :n, 'allowed', :reason, :grant_approval, CURRENT_USER(), CURRENT_ROLE(),
             CURRENT_SESSION(), :qid;
  END IF;
  COMMIT;
  RETURN OBJECT_CONSTRUCT('rows', n, 'query_id', qid, 'approval_id', grant_approval,
                          'decision', IFF(reason IS NULL, 'under threshold', 'allowed'));
END;
$$;

-- Privileges (run as the owner of CLYRA_GUARD, e.g. role CLYRA_GUARD_OWNER):
REVOKE ALL ON ALL TABLES IN SCHEMA CLYRA_GUARD FROM ROLE PUBLIC;
-- GRANT USAGE ON SCHEMA CLYRA_GUARD TO ROLE TRANSFORMER;
-- GRANT USAGE ON PROCEDURE CLYRA_GUARD.GUARDED_DML(VARCHAR, VARCHAR, VARCHAR, VARCHAR, VARCHAR) TO ROLE TRANSFORMER;
-- GRANT USAGE ON PROCEDURE CLYRA_GUARD.REGISTER_GRANT(VARCHAR, VARCHAR, VARCHAR, ARRAY, NUMBER, TIMESTAMP_TZ) TO ROLE CLYRA_APPROVALS;
-- REVOKE UPDATE, DELETE ON ALL TABLES IN SCHEMA PROD.ANALYTICS FROM ROLE TRANSFORMER;
--
-- Rules, from the policy's data_platform.warehouse_guard:
-- INSERT INTO CLYRA_GUARD.RULES VALUES (0, 'PROD.ANALYTICS.%', 100, 50, 'mass_dml');
--
-- Use:
-- CALL CLYRA_GUARD.GUARDED_DML('PROD.ANALYTICS.ORDERS', 'UPDATE', 'AMOUNT = AMOUNT + 1',
--                              'ID <= 960', NULL);                     -- blocked: -20001
-- CALL CLYRA_GUARD.GUARDED_DML('PROD.ANALYTICS.ORDERS', 'UPDATE', 'AMOUNT = AMOUNT + 1',
--                              'ID <= 960', 'clyra-rt1.eyJ...');       -- allowed once
