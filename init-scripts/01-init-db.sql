-- Creates the database the employee-activity pipeline captures from.
-- Runs under psql (locally: `psql -h 127.0.0.1 -U postgres -f init-scripts/01-init-db.sql`) and from the
-- postgres image's /docker-entrypoint-initdb.d. CREATE DATABASE has no IF NOT EXISTS, so \gexec runs it
-- only when the database is missing: the script is safe to run again.
SELECT 'CREATE DATABASE streaming_db'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'streaming_db')\gexec
