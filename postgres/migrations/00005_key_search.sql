-- Key search at scale. q matches a substring of a key's name or ID or of its
-- owner's name or email: without an index of substrings that reads every key
-- of the tenant. pg_trgm's trigram indexes find such substrings; it ships
-- with PostgreSQL and is a trusted extension (PostgreSQL 13 on), which a
-- database owner may create. Where it cannot be created (not installed, or
-- no privilege), the migration goes on without it and search reads every
-- key as before; running it again later (after `keyward migrate` down to 4)
-- adds the indexes.
--
-- The indexes are of lower(column), the expression an ASCII search compares
-- (postgres/convert.go, lowered). Building them reads every key once:
-- seconds at a million keys, during which the keys table takes no writes
-- (other nodes' last-used times wait): run `keyward migrate` at a quiet
-- moment. A migration runs in a transaction, where CREATE INDEX
-- CONCURRENTLY cannot.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    ops text;
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    SELECT format('%I.gin_trgm_ops', n.nspname) INTO ops
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    EXECUTE format('CREATE INDEX keys_name_trgm ON keys USING gin (lower(name) %s)', ops);
    EXECUTE format('CREATE INDEX keys_id_trgm ON keys USING gin (lower(id) %s)', ops);
    EXECUTE format('CREATE INDEX users_name_trgm ON users USING gin (lower(name) %s)', ops);
    EXECUTE format('CREATE INDEX users_email_trgm ON users USING gin (lower(email) %s)', ops);
EXCEPTION WHEN OTHERS THEN
    -- Not installed, no privilege to create it, or installed in a schema
    -- this user may not use: all or nothing, and the migration goes on.
    RAISE NOTICE 'keyward: no trigram indexes (%): key search reads every key', SQLERRM;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP INDEX IF EXISTS users_email_trgm;
DROP INDEX IF EXISTS users_name_trgm;
DROP INDEX IF EXISTS keys_id_trgm;
DROP INDEX IF EXISTS keys_name_trgm;
