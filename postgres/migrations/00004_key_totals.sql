-- Lists at scale, as SQLite's 00003_key_totals: the totals of the unfiltered
-- list and of the type filter are counters, kept by statement-level
-- triggers (one update a statement, however many keys it inserts or
-- deletes: a user's deletion cascading to thousands of keys is one). The
-- owner's kind is kept with each key (kinds never change), so that a key's
-- deletion can be counted after its owner is gone. Key creations of one
-- tenant wait on one counter row until commit; they already wait on their
-- owner's row for the per-owner maximum.
--
-- The owner's kind is set by a trigger before each insert, not by the
-- insert statement, so that a node of the previous release (still running
-- during a rolling upgrade) inserts correct rows too. The existing keys are
-- filled once, here, with the change announcements of 00003_notify off: the
-- owner's kind changes no verification. That rewrite holds the keys table
-- until the migration commits (seconds at a million keys): run `keyward
-- migrate` at a quiet moment.

-- +goose Up
ALTER TABLE keys ADD COLUMN owner_kind text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE keys DISABLE TRIGGER keys_notify_update;
UPDATE keys k SET owner_kind = u.kind FROM users u WHERE u.id = k.owner_id;
ALTER TABLE keys ENABLE TRIGGER keys_notify_update;

-- +goose StatementBegin
CREATE FUNCTION keyward_key_owner_kind() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    NEW.owner_kind := coalesce((SELECT kind FROM users WHERE id = NEW.owner_id), '');
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER keys_owner_kind BEFORE INSERT ON keys
    FOR EACH ROW EXECUTE FUNCTION keyward_key_owner_kind();

CREATE TABLE key_totals (
    tenant_id text   NOT NULL,
    kind      text   COLLATE "C" NOT NULL,
    n         bigint NOT NULL CHECK (n >= 0),
    PRIMARY KEY (tenant_id, kind)
);

INSERT INTO key_totals (tenant_id, kind, n)
    SELECT tenant_id, owner_kind, count(*) FROM keys GROUP BY tenant_id, owner_kind;

-- +goose StatementBegin
CREATE FUNCTION keyward_count_inserted_keys() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO key_totals (tenant_id, kind, n)
        SELECT tenant_id, owner_kind, count(*) FROM inserted_keys GROUP BY tenant_id, owner_kind
        ORDER BY tenant_id, owner_kind
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = key_totals.n + excluded.n;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION keyward_count_deleted_keys() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE key_totals t SET n = t.n - d.n
        FROM (SELECT tenant_id, owner_kind, count(*) AS n FROM deleted_keys
              GROUP BY tenant_id, owner_kind) d
        WHERE t.tenant_id = d.tenant_id AND t.kind = d.owner_kind;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER keys_total_insert AFTER INSERT ON keys
    REFERENCING NEW TABLE AS inserted_keys
    FOR EACH STATEMENT EXECUTE FUNCTION keyward_count_inserted_keys();
CREATE TRIGGER keys_total_delete AFTER DELETE ON keys
    REFERENCING OLD TABLE AS deleted_keys
    FOR EACH STATEMENT EXECUTE FUNCTION keyward_count_deleted_keys();

-- +goose Down
DROP TRIGGER keys_owner_kind ON keys;
DROP FUNCTION keyward_key_owner_kind();
DROP TRIGGER keys_total_delete ON keys;
DROP TRIGGER keys_total_insert ON keys;
DROP FUNCTION keyward_count_deleted_keys();
DROP FUNCTION keyward_count_inserted_keys();
DROP TABLE key_totals;
ALTER TABLE keys DROP COLUMN owner_kind;
