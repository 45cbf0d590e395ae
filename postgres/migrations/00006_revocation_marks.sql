-- Revocation marks, as SQLite's 00007_revocation_marks: a revocation of a
-- whole tenant's keys, or of one owner type's, written as one row instead of
-- one UPDATE and one event per key. Row by row, 100,000 keys took 14 s here
-- (every revoked row is a new row version in each of the key table's
-- indexes, and each event one in each of the events'); the mark takes a
-- fraction of a second, and the store writes the rows afterwards, in small
-- transactions (revocation.go).
--
-- A mark covers each key of its tenant (and kind, '' for every kind) that
-- existed when it was written (seq <= max_seq: the mark's transaction locks
-- the keys table against inserts before it reads max(seq), so that no key
-- inserted concurrently has a lower seq and commits after it), was not
-- revoked and had not expired at its time. Until the store writes a covered
-- key's revocation into its row, every read of the key reads it revoked by
-- the earliest mark that covers it, and these triggers keep the mark's
-- promises whoever changes the key first: a change to what the key is (any
-- column but its use, its revocation and the store's bookkeeping) or its
-- deletion first writes its key.revoked event, as the mark's event template
-- says (no event when action is NULL), and a change leaves the key revoked.
-- The store settles a mark by writing its keys' events and then their
-- revocation columns, which the update trigger does not watch.
--
-- Adding seq rewrites the keys table (seconds at a million keys): run
-- `keyward migrate` at a quiet moment.

-- +goose Up
ALTER TABLE keys ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX keys_by_seq ON keys (seq);
-- A tenant's keys in seq order, for settling a mark chunk by chunk.
CREATE INDEX keys_by_tenant_seq ON keys (tenant_id, seq);

CREATE TABLE key_revocations (
    seq           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     text COLLATE "C" NOT NULL,
    kind          text COLLATE "C" NOT NULL CHECK (kind IN ('', 'user', 'system')),
    max_seq       bigint NOT NULL,
    -- The keys up to done_seq have been written; for the store's own use.
    done_seq      bigint NOT NULL DEFAULT 0,
    at            bigint NOT NULL,
    revoked_by    text,
    revoke_reason text,
    -- The key.revoked event of each covered key, less its ID and target.
    action        text COLLATE "C",
    actor_type    text COLLATE "C",
    actor_id      text COLLATE "C",
    actor_name    text,
    actor_user_id text COLLATE "C",
    ip            text,
    user_agent    text,
    details       jsonb CHECK (details IS NULL OR jsonb_typeof(details) = 'object')
);

CREATE INDEX key_revocations_by_tenant ON key_revocations (tenant_id, seq);

-- +goose StatementBegin
-- The earliest mark that covers key k (NULL when none does).
CREATE FUNCTION keyward_key_mark(k keys) RETURNS key_revocations
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT m.* FROM key_revocations m
    WHERE k.revoked_at IS NULL AND m.tenant_id = k.tenant_id AND (m.kind = '' OR m.kind = k.owner_kind)
        AND k.seq <= m.max_seq AND (k.expires_at IS NULL OR k.expires_at > m.at)
    ORDER BY m.seq LIMIT 1
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- Writes k's key.revoked event from mark m, with an ID of 22 random
-- characters (hex, a subset of base62, from gen_random_uuid).
CREATE FUNCTION keyward_mark_event(k keys, m key_revocations) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
    INSERT INTO events (id, tenant_id, time, action, actor_type, actor_id, actor_name, actor_user_id,
        target_type, target_id, target_name, target_owner_id, ip, user_agent, details)
    SELECT 'evt_' || substr(md5(gen_random_uuid()::text), 1, 22),
        k.tenant_id, m.at, m.action, m.actor_type, m.actor_id, m.actor_name, m.actor_user_id,
        'key', k.id, k.name, k.owner_id, m.ip, m.user_agent, m.details
    WHERE m.seq IS NOT NULL AND m.action IS NOT NULL
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION keyward_marked_key_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    m key_revocations := keyward_key_mark(OLD);
BEGIN
    IF m.seq IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM keyward_mark_event(OLD, m);
    UPDATE keys SET revoked_at = m.at, revoked_by = m.revoked_by, revoke_reason = m.revoke_reason,
        updated_at = greatest(NEW.updated_at, m.at)
    WHERE id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION keyward_marked_key_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM keyward_mark_event(OLD, keyward_key_mark(OLD));
    RETURN OLD;
END $$;
-- +goose StatementEnd

CREATE TRIGGER keys_revocation_update AFTER UPDATE OF name, description, role, scopes, meta, disabled,
        expires_at, rate_limit, rate_window, id, tenant_id, owner_id, owner_kind, hash, start, created_at ON keys
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL) EXECUTE FUNCTION keyward_marked_key_changed();
CREATE TRIGGER keys_revocation_delete BEFORE DELETE ON keys
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL) EXECUTE FUNCTION keyward_marked_key_deleted();

-- +goose Down
-- Write every covered key's revocation (and, through the trigger, its
-- event: setting the name to itself fires it) before the marks go.
UPDATE keys k SET name = k.name WHERE k.revoked_at IS NULL AND (keyward_key_mark(k)).seq IS NOT NULL;
DROP TRIGGER keys_revocation_delete ON keys;
DROP TRIGGER keys_revocation_update ON keys;
DROP FUNCTION keyward_marked_key_deleted();
DROP FUNCTION keyward_marked_key_changed();
DROP FUNCTION keyward_mark_event(keys, key_revocations);
DROP FUNCTION keyward_key_mark(keys);
DROP TABLE key_revocations;
DROP INDEX keys_by_tenant_seq;
DROP INDEX keys_by_seq;
ALTER TABLE keys DROP COLUMN seq;
