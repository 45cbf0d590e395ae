-- Per-key rate limits and hourly usage counts by verification outcome.

-- +goose Up
ALTER TABLE keys ADD COLUMN rate_limit integer CHECK (rate_limit IS NULL OR rate_limit > 0);
ALTER TABLE keys ADD COLUMN rate_window integer CHECK (rate_window IS NULL OR rate_window > 0);

-- One row per key, hour (unix microseconds of the hour's start) and code.
CREATE TABLE key_usage (
    key_id text COLLATE "C" NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
    hour   bigint NOT NULL,
    code   text COLLATE "C" NOT NULL,
    count  bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (key_id, hour, code)
);

-- +goose Down
DROP TABLE key_usage;
ALTER TABLE keys DROP COLUMN rate_window;
ALTER TABLE keys DROP COLUMN rate_limit;
