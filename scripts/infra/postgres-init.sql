-- Roles and databases for local development and tests. Idempotent: run by
-- scripts/infra/up.sh on every PostgreSQL start, and by the postgres image's
-- /docker-entrypoint-initdb.d on first start (docker-compose.yml).
-- Each role's password equals its name; it owns its database and may create
-- databases (tests create throwaway ones). Needs psql (\gexec).

DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['orchestrator', 'inventory', 'payment', 'notification', 'sagatest']
  LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', r, r);
    ELSE
      -- Re-assert the expected state in case someone changed it by hand.
      EXECUTE format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', r, r);
    END IF;
  END LOOP;
END
$$;

-- CREATE DATABASE cannot run inside a DO block (it is not transactional).
SELECT format('CREATE DATABASE %I OWNER %I', r, r)
FROM unnest(ARRAY['orchestrator', 'inventory', 'payment', 'notification', 'sagatest']) AS r
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = r)
\gexec
