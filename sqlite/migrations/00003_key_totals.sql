-- Lists at scale. The contract's list answers carry a total: counting a
-- tenant's keys row by row takes a quarter of a second at a million keys,
-- so the totals of the unfiltered list and of the type filter are kept as
-- counters, by triggers, in the transaction of every insert and delete
-- (a user's deletion cascading to its keys included).
--
-- The owner's kind (user or system) is kept with each key: it never
-- changes, and the type filter and sort then need no join.

-- +goose Up
ALTER TABLE keys ADD COLUMN owner_kind TEXT NOT NULL DEFAULT '' COLLATE NOCASE;
UPDATE keys SET owner_kind = (SELECT kind FROM users WHERE users.id = keys.owner_id);
CREATE INDEX keys_by_type ON keys (tenant_id, owner_kind, id);

CREATE TABLE key_totals (
    tenant_id TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    n         INTEGER NOT NULL CHECK (n >= 0),
    PRIMARY KEY (tenant_id, kind)
) STRICT, WITHOUT ROWID;

INSERT INTO key_totals (tenant_id, kind, n)
    SELECT tenant_id, owner_kind, count(*) FROM keys GROUP BY tenant_id, owner_kind;

-- +goose StatementBegin
CREATE TRIGGER keys_total_insert AFTER INSERT ON keys BEGIN
    INSERT INTO key_totals (tenant_id, kind, n) VALUES (NEW.tenant_id, NEW.owner_kind, 1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER keys_total_delete AFTER DELETE ON keys BEGIN
    UPDATE key_totals SET n = n - 1 WHERE tenant_id = OLD.tenant_id AND kind = OLD.owner_kind;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER keys_total_delete;
DROP TRIGGER keys_total_insert;
DROP TABLE key_totals;
DROP INDEX keys_by_type;
ALTER TABLE keys DROP COLUMN owner_kind;
