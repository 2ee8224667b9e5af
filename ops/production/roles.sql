-- Login roles for the web and the workers, each with the timeouts that suit it, beside the owner role `renfort`
-- that runs release (migrations) and owns every table. Safe to run again (after a restore, after adding a table).
--
--   psql -v ON_ERROR_STOP=1 -d renfort -f ops/production/roles.sql
--   psql -d renfort -c '\password renfort_web'       (then the same for renfort_worker)
--
-- Then /etc/renfort/web.env: DATABASE_URL=postgresql://renfort_web:…@…/renfort, worker.env: renfort_worker.
-- Both may read and write rows, nothing more: no DDL, so a bug or an injection in a request cannot drop a table.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'renfort_web') THEN
        CREATE ROLE renfort_web LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'renfort_worker') THEN
        CREATE ROLE renfort_worker LOGIN;
    END IF;
END
$$;

-- A request never waits long on PostgreSQL: the surge path does no SQL at all, the other pages answer in
-- milliseconds. A runaway query (a bad plan, a huge export) is cancelled; the app answers 503 and retries are the
-- client's. A lock wait ends sooner still.
ALTER ROLE renfort_web SET statement_timeout = '10s';
ALTER ROLE renfort_web SET lock_timeout = '5s';
ALTER ROLE renfort_web SET idle_in_transaction_session_timeout = '30s';
-- Workers write batches of up to 10,000 rows and run jobs of up to 15 minutes; a cancelled statement is an outage
-- to them (SQLSTATE 57014, app/db/errors.py): the batch is put back and retried, never dead-lettered.
ALTER ROLE renfort_worker SET statement_timeout = '5min';
ALTER ROLE renfort_worker SET lock_timeout = '1min';

GRANT CONNECT ON DATABASE renfort TO renfort_web, renfort_worker;
GRANT USAGE ON SCHEMA public TO renfort_web, renfort_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO renfort_web, renfort_worker;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO renfort_web, renfort_worker;
-- Tables and sequences the owner's future migrations create get the same grants.
ALTER DEFAULT PRIVILEGES FOR ROLE renfort IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO renfort_web, renfort_worker;
ALTER DEFAULT PRIVILEGES FOR ROLE renfort IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO renfort_web, renfort_worker;
