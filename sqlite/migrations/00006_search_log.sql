-- Key search at scale. A search by fragment must find substrings, which no
-- SQLite index does: a LIKE reads every key of the tenant (two seconds at a
-- million keys). The store keeps a substring index of each searched tenant's
-- keys in memory instead (textindex.go), and this log tells it what changed
-- since it last looked: every insert and delete of a key or user, every
-- rename of a key and every change of a user's name or email, by whoever
-- made it (a cascade, another process, a migration). Each row names the
-- tenant and the rowid; the index reads the row's present state.
--
-- The log keeps the latest searchLogKeep changes: an index further behind
-- than that rebuilds instead. AUTOINCREMENT keeps sequence numbers rising
-- even when the pruning empties the table.

-- +goose Up
CREATE TABLE search_log (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT    NOT NULL,
    tbl       TEXT    NOT NULL CHECK (tbl IN ('key', 'user')),
    row       INTEGER NOT NULL
) STRICT;

-- +goose StatementBegin
CREATE TRIGGER search_log_prune AFTER INSERT ON search_log BEGIN
    DELETE FROM search_log WHERE seq <= NEW.seq - 100000;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER keys_search_insert AFTER INSERT ON keys BEGIN
    INSERT INTO search_log (tenant_id, tbl, row) VALUES (NEW.tenant_id, 'key', NEW.rowid);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER keys_search_delete AFTER DELETE ON keys BEGIN
    INSERT INTO search_log (tenant_id, tbl, row) VALUES (OLD.tenant_id, 'key', OLD.rowid);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER keys_search_rename AFTER UPDATE OF name, id, owner_id, tenant_id ON keys
    WHEN OLD.name IS NOT NEW.name COLLATE BINARY OR OLD.id IS NOT NEW.id
        OR OLD.owner_id IS NOT NEW.owner_id OR OLD.tenant_id IS NOT NEW.tenant_id BEGIN
    INSERT INTO search_log (tenant_id, tbl, row) VALUES (OLD.tenant_id, 'key', OLD.rowid);
    INSERT INTO search_log (tenant_id, tbl, row) VALUES (NEW.tenant_id, 'key', NEW.rowid);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO search_log (tenant_id, tbl, row) VALUES (NEW.tenant_id, 'user', NEW.rowid);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    INSERT INTO search_log (tenant_id, tbl, row) VALUES (OLD.tenant_id, 'user', OLD.rowid);
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER users_search_change AFTER UPDATE OF name, email, id, kind, tenant_id ON users
    WHEN OLD.name IS NOT NEW.name COLLATE BINARY OR OLD.email IS NOT NEW.email COLLATE BINARY
        OR OLD.id IS NOT NEW.id OR OLD.kind IS NOT NEW.kind OR OLD.tenant_id IS NOT NEW.tenant_id BEGIN
    INSERT INTO search_log (tenant_id, tbl, row) VALUES (OLD.tenant_id, 'user', OLD.rowid);
    INSERT INTO search_log (tenant_id, tbl, row) VALUES (NEW.tenant_id, 'user', NEW.rowid);
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER users_search_change;
DROP TRIGGER users_search_delete;
DROP TRIGGER users_search_insert;
DROP TRIGGER keys_search_rename;
DROP TRIGGER keys_search_delete;
DROP TRIGGER keys_search_insert;
DROP TRIGGER search_log_prune;
DROP TABLE search_log;
