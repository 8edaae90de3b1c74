#!/bin/sh
# First start of the compose PostgreSQL only (docker-entrypoint-initdb.d): a read-only role for
# Grafana. cratewatch creates its tables later (migrations at startup); the default privileges
# below make every table it creates readable, never writable, by grafana_reader.
set -eu
psql -v ON_ERROR_STOP=1 -v pw="$GRAFANA_DB_PASSWORD" --username "$POSTGRES_USER" \
    --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE grafana_reader LOGIN PASSWORD :'pw';
GRANT CONNECT ON DATABASE cratewatch TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE cratewatch IN SCHEMA public
    GRANT SELECT ON TABLES TO grafana_reader;
SQL
