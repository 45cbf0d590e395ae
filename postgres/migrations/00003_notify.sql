-- Cache invalidation across nodes. Every committed change that can alter a
-- cached key (what verification answers and judges, and what a key shows as
-- its caller's own in GET /v1/me) is announced on the channel keyward_changes
-- by the database itself, from triggers, so that no code path can forget it:
-- a single change, a bulk revocation, a user's deletion cascading to its keys,
-- a user's new name, an UPDATE or DELETE of an operator's own. (Not TRUNCATE,
-- and nothing while session_replication_role is "replica": those bypass
-- these triggers.) NOTIFY is transactional: listeners hear of a change only
-- once it has committed, and never of one that rolled back. The functions
-- carry the search_path they were created with, so that they work from any
-- session.
--
-- Payloads (see postgres.ParseChange):
--   k:<hex digest>,<hex digest>,…   keys changed or deleted, at most 100 a notification
--   t:<tenant id>                   a tenant's settings changed
-- A key update that moves only last_used_at or the expiry bookkeeping
-- (the usage flush every few seconds) is not announced: it changes no answer.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION keyward_notify_key_digests(digests bytea[]) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    i integer := 1;
    n integer := coalesce(array_length(digests, 1), 0);
BEGIN
    WHILE i <= n LOOP
        PERFORM pg_notify('keyward_changes', 'k:' || (
            SELECT string_agg(encode(d, 'hex'), ',')
            FROM unnest(digests[i:i + 99]) AS d));
        i := i + 100;
    END LOOP;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION keyward_keys_updated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- The old digest, and the new one should a key's digest ever change.
    PERFORM keyward_notify_key_digests(ARRAY(
        SELECT DISTINCT d FROM old_keys o JOIN new_keys n ON n.id = o.id,
            LATERAL (VALUES (o.hash), (n.hash)) AS v(d)
        WHERE (o.hash, o.tenant_id, o.owner_id, o.name, o.description, o.role, o.scopes, o.meta::text,
               o.disabled, o.expires_at, o.revoked_at, o.revoked_by, o.revoke_reason, o.rate_limit, o.rate_window)
              IS DISTINCT FROM
              (n.hash, n.tenant_id, n.owner_id, n.name, n.description, n.role, n.scopes, n.meta::text,
               n.disabled, n.expires_at, n.revoked_at, n.revoked_by, n.revoke_reason, n.rate_limit, n.rate_window)));
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION keyward_keys_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM keyward_notify_key_digests(ARRAY(SELECT hash FROM old_keys));
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION keyward_tenant_updated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF (OLD.api_keys_enabled, OLD.max_expiration_days, OLD.max_keys_per_user, OLD.max_keys_per_service_user,
        OLD.expiry_notice_days, OLD.key_prefix)
       IS DISTINCT FROM
       (NEW.api_keys_enabled, NEW.max_expiration_days, NEW.max_keys_per_user, NEW.max_keys_per_service_user,
        NEW.expiry_notice_days, NEW.key_prefix) THEN
        PERFORM pg_notify('keyward_changes', 't:' || NEW.id);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION keyward_user_updated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF (OLD.name, OLD.email) IS DISTINCT FROM (NEW.name, NEW.email) THEN
        PERFORM keyward_notify_key_digests(ARRAY(
            SELECT hash FROM keys WHERE tenant_id = NEW.tenant_id AND owner_id = NEW.id));
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER users_notify_update AFTER UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION keyward_user_updated();

CREATE TRIGGER keys_notify_update AFTER UPDATE ON keys
    REFERENCING OLD TABLE AS old_keys NEW TABLE AS new_keys
    FOR EACH STATEMENT EXECUTE FUNCTION keyward_keys_updated();

CREATE TRIGGER keys_notify_delete AFTER DELETE ON keys
    REFERENCING OLD TABLE AS old_keys
    FOR EACH STATEMENT EXECUTE FUNCTION keyward_keys_deleted();

CREATE TRIGGER tenants_notify_update AFTER UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION keyward_tenant_updated();

-- +goose Down
DROP TRIGGER users_notify_update ON users;
DROP TRIGGER tenants_notify_update ON tenants;
DROP TRIGGER keys_notify_delete ON keys;
DROP TRIGGER keys_notify_update ON keys;
DROP FUNCTION keyward_user_updated();
DROP FUNCTION keyward_tenant_updated();
DROP FUNCTION keyward_keys_deleted();
DROP FUNCTION keyward_keys_updated();
DROP FUNCTION keyward_notify_key_digests(bytea[]);
