-- Per-key rate limits and hourly usage counts by verification outcome.

-- +goose Up
ALTER TABLE keys ADD COLUMN rate_limit INTEGER CHECK (rate_limit IS NULL OR rate_limit > 0);
ALTER TABLE keys ADD COLUMN rate_window INTEGER CHECK (rate_window IS NULL OR rate_window > 0);

-- One row per key, hour (unix microseconds of the hour's start) and code.
CREATE TABLE key_usage (
    key_id TEXT    NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    hour   INTEGER NOT NULL,
    code   TEXT    NOT NULL,
    count  INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (key_id, hour, code)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE key_usage;
ALTER TABLE keys DROP COLUMN rate_window;
ALTER TABLE keys DROP COLUMN rate_limit;
