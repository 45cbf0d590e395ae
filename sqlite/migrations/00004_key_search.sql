-- Searches read a narrow index rather than every key's row: the columns a
-- search compares (name, id) and the owner it may match through, in the
-- tenant's order. Three to four times faster at a million keys; still a scan
-- of the tenant's keys, not an index of substrings.

-- +goose Up
CREATE INDEX keys_search ON keys (tenant_id, name, id, owner_id);

-- +goose Down
DROP INDEX keys_search;
