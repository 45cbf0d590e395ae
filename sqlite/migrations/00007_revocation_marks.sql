-- Revocation marks: a revocation of a whole tenant's keys, or of one owner
-- type's, written as one row instead of one UPDATE and one event per key.
-- Revoking 100,000 keys row by row wrote about 150 MB of pages (the keys, the
-- events and their indexes) and took five seconds; the mark takes
-- a few tenths of a second, and the store writes the rows afterwards, in small
-- transactions (revocation.go).
--
-- A mark covers each key of its tenant (and kind, '' for every kind) that
-- existed when it was written (rowid <= max_rowid: new keys are always
-- inserted above every mark's max_rowid, see qInsertKey), was not revoked and
-- had not expired at its time. Until the store writes a covered key's
-- revocation into its row, every read of the key reads it revoked by the
-- earliest mark that covers it, and these triggers keep the mark's promises
-- whoever changes the key first: a change to what the key is (its name, its
-- role, its expiry, ...; any column but its use, its revocation and the
-- store's bookkeeping) or its deletion first writes its key.revoked event,
-- as the mark's event template says (no event when action is NULL), and a
-- change leaves the key revoked. A use (last_used_at) leaves a covered key
-- covered. The store settles a mark by writing its keys' events and then
-- their revocation columns, which this trigger does not watch; a program
-- that revokes keys by hand must not write only those columns of a covered
-- key. The triggers use no function of Keyward's, so any SQLite may write
-- to the file.
--
-- The triggers' event IDs are evt_ and 22 random base62 characters, like
-- Keyward's own.

-- +goose Up
CREATE TABLE key_revocations (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('', 'user', 'system')),
    max_rowid     INTEGER NOT NULL,
    -- The keys up to done_rowid have been written; for the store's own use.
    done_rowid    INTEGER NOT NULL DEFAULT 0,
    at            INTEGER NOT NULL,
    revoked_by    TEXT,
    revoke_reason TEXT,
    -- The key.revoked event of each covered key, less its ID and target.
    action        TEXT,
    actor_type    TEXT,
    actor_id      TEXT,
    actor_name    TEXT,
    actor_user_id TEXT,
    ip            TEXT,
    user_agent    TEXT,
    details       TEXT CHECK (details IS NULL OR json_type(details) = 'object')
) STRICT;

CREATE INDEX key_revocations_by_tenant ON key_revocations (tenant_id, seq);

-- A tenant's keys in rowid order, for settling a mark chunk by chunk.
CREATE INDEX keys_by_tenant ON keys (tenant_id);

-- +goose StatementBegin
-- A key is never inserted at or below a pending mark's max_rowid, where the
-- mark would cover it: the store inserts above (qInsertKey); any other
-- writer's insert that SQLite would give a deleted key's rowid fails.
CREATE TRIGGER keys_above_marks AFTER INSERT ON keys
    WHEN NEW.rowid <= (SELECT max(max_rowid) FROM key_revocations) BEGIN
    SELECT RAISE(ABORT, 'keyward: a key inserted at or below a pending revocation mark''s rowid');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER keys_revocation_update AFTER UPDATE OF name, description, role, scopes, meta, disabled,
        expires_at, rate_limit, rate_window, id, tenant_id, owner_id, owner_kind, hash, start, created_at ON keys
    WHEN OLD.revoked_at IS NULL AND EXISTS (SELECT 1 FROM key_revocations m WHERE m.tenant_id = OLD.tenant_id AND (m.kind = '' OR m.kind = OLD.owner_kind)
            AND OLD.rowid <= m.max_rowid AND (OLD.expires_at IS NULL OR OLD.expires_at > m.at)) BEGIN
    INSERT INTO events (id, tenant_id, time, action, actor_type, actor_id, actor_name, actor_user_id,
        target_type, target_id, target_name, target_owner_id, ip, user_agent, details)
        SELECT 'evt_' ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1),
            OLD.tenant_id, r.at, r.action, r.actor_type, r.actor_id, r.actor_name, r.actor_user_id,
            'key', OLD.id, OLD.name, OLD.owner_id, r.ip, r.user_agent, r.details
        FROM key_revocations r
        WHERE r.seq = (SELECT m.seq FROM key_revocations m WHERE m.tenant_id = OLD.tenant_id AND (m.kind = '' OR m.kind = OLD.owner_kind)
            AND OLD.rowid <= m.max_rowid AND (OLD.expires_at IS NULL OR OLD.expires_at > m.at)
            ORDER BY m.seq LIMIT 1) AND r.action IS NOT NULL;
    INSERT INTO event_totals (tenant_id, n)
        SELECT OLD.tenant_id, 1 FROM key_revocations r
        WHERE r.seq = (SELECT m.seq FROM key_revocations m WHERE m.tenant_id = OLD.tenant_id AND (m.kind = '' OR m.kind = OLD.owner_kind)
            AND OLD.rowid <= m.max_rowid AND (OLD.expires_at IS NULL OR OLD.expires_at > m.at)
            ORDER BY m.seq LIMIT 1) AND r.action IS NOT NULL
        ON CONFLICT (tenant_id) DO UPDATE SET n = n + 1;
    UPDATE keys SET (revoked_at, revoked_by, revoke_reason, updated_at) =
        (SELECT r.at, r.revoked_by, r.revoke_reason, max(NEW.updated_at, r.at) FROM key_revocations r
         WHERE r.seq = (SELECT m.seq FROM key_revocations m WHERE m.tenant_id = OLD.tenant_id AND (m.kind = '' OR m.kind = OLD.owner_kind)
            AND OLD.rowid <= m.max_rowid AND (OLD.expires_at IS NULL OR OLD.expires_at > m.at)
            ORDER BY m.seq LIMIT 1))
        WHERE rowid = NEW.rowid AND revoked_at IS NULL;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER keys_revocation_delete BEFORE DELETE ON keys
    WHEN OLD.revoked_at IS NULL AND EXISTS (SELECT 1 FROM key_revocations m WHERE m.tenant_id = OLD.tenant_id AND (m.kind = '' OR m.kind = OLD.owner_kind)
            AND OLD.rowid <= m.max_rowid AND (OLD.expires_at IS NULL OR OLD.expires_at > m.at)) BEGIN
    INSERT INTO events (id, tenant_id, time, action, actor_type, actor_id, actor_name, actor_user_id,
        target_type, target_id, target_name, target_owner_id, ip, user_agent, details)
        SELECT 'evt_' ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1) ||
            substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 1 + abs(random() % 62), 1),
            OLD.tenant_id, r.at, r.action, r.actor_type, r.actor_id, r.actor_name, r.actor_user_id,
            'key', OLD.id, OLD.name, OLD.owner_id, r.ip, r.user_agent, r.details
        FROM key_revocations r
        WHERE r.seq = (SELECT m.seq FROM key_revocations m WHERE m.tenant_id = OLD.tenant_id AND (m.kind = '' OR m.kind = OLD.owner_kind)
            AND OLD.rowid <= m.max_rowid AND (OLD.expires_at IS NULL OR OLD.expires_at > m.at)
            ORDER BY m.seq LIMIT 1) AND r.action IS NOT NULL;
    INSERT INTO event_totals (tenant_id, n)
        SELECT OLD.tenant_id, 1 FROM key_revocations r
        WHERE r.seq = (SELECT m.seq FROM key_revocations m WHERE m.tenant_id = OLD.tenant_id AND (m.kind = '' OR m.kind = OLD.owner_kind)
            AND OLD.rowid <= m.max_rowid AND (OLD.expires_at IS NULL OR OLD.expires_at > m.at)
            ORDER BY m.seq LIMIT 1) AND r.action IS NOT NULL
        ON CONFLICT (tenant_id) DO UPDATE SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose Down
-- Write every covered key's revocation before the marks go. Setting the name
-- (to itself) fires the update trigger, which writes the key's event.
UPDATE keys AS k SET name = name, (revoked_at, revoked_by, revoke_reason, updated_at) =
    (SELECT r.at, r.revoked_by, r.revoke_reason, r.at FROM key_revocations r
     WHERE r.seq = (SELECT m.seq FROM key_revocations m WHERE m.tenant_id = k.tenant_id AND (m.kind = '' OR m.kind = k.owner_kind)
            AND k.rowid <= m.max_rowid AND (k.expires_at IS NULL OR k.expires_at > m.at)
            ORDER BY m.seq LIMIT 1))
    WHERE k.revoked_at IS NULL AND EXISTS (SELECT 1 FROM key_revocations m WHERE m.tenant_id = k.tenant_id AND (m.kind = '' OR m.kind = k.owner_kind)
            AND k.rowid <= m.max_rowid AND (k.expires_at IS NULL OR k.expires_at > m.at));
DROP TRIGGER keys_revocation_delete;
DROP TRIGGER keys_revocation_update;
DROP TRIGGER keys_above_marks;
DROP INDEX keys_by_tenant;
DROP TABLE key_revocations;
