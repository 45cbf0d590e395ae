-- Keyward's first schema. Times are INTEGER unix microseconds in UTC; JSON
-- values are TEXT; text that people search and sort compares with NOCASE.

-- +goose Up
CREATE TABLE tenants (
    id                        TEXT    NOT NULL PRIMARY KEY,
    name                      TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    created_at                INTEGER NOT NULL,
    api_keys_enabled          INTEGER NOT NULL CHECK (api_keys_enabled IN (0, 1)),
    max_expiration_days       INTEGER,
    max_keys_per_user         INTEGER NOT NULL,
    max_keys_per_service_user INTEGER NOT NULL,
    expiry_notice_days        INTEGER NOT NULL,
    key_prefix                TEXT    NOT NULL
) STRICT;

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id),
    email         TEXT    NOT NULL COLLATE NOCASE,
    name          TEXT    NOT NULL COLLATE NOCASE,
    kind          TEXT    NOT NULL,
    roles         TEXT    NOT NULL CHECK (json_type(roles) = 'array'),
    licensed      INTEGER NOT NULL CHECK (licensed IN (0, 1)),
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- The target of the (tenant_id, owner) foreign keys below, so that a key or
    -- a session can never belong to a user of another tenant.
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, email)
) STRICT;

CREATE INDEX users_by_name ON users (tenant_id, name, id);
CREATE INDEX users_by_email ON users (email);

CREATE TABLE keys (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL,
    owner_id        TEXT    NOT NULL,
    name            TEXT    NOT NULL COLLATE NOCASE,
    description     TEXT    NOT NULL,
    role            TEXT    NOT NULL COLLATE NOCASE,
    scopes          TEXT    NOT NULL CHECK (json_type(scopes) = 'array'),
    meta            TEXT    NOT NULL CHECK (json_type(meta) = 'object'),
    hash            BLOB    NOT NULL UNIQUE,
    start           TEXT    NOT NULL,
    disabled        INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    expires_at      INTEGER,
    last_used_at    INTEGER,
    revoked_at      INTEGER,
    revoked_by      TEXT,
    revoke_reason   TEXT,
    -- 1 once the key.expired event of this key exists.
    expiry_recorded INTEGER NOT NULL DEFAULT 0 CHECK (expiry_recorded IN (0, 1)),
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;

-- One index per stored sort column, in the exact form the list query orders
-- by: text compares with NOCASE, a NULL expires_at ("never") sorts after every
-- time and a NULL last_used_at ("never used") before every time.
CREATE INDEX keys_by_name ON keys (tenant_id, name, id);
CREATE INDEX keys_by_id ON keys (tenant_id, id COLLATE NOCASE, id);
CREATE INDEX keys_by_role ON keys (tenant_id, role, id);
CREATE INDEX keys_by_created_at ON keys (tenant_id, created_at, id);
CREATE INDEX keys_by_updated_at ON keys (tenant_id, updated_at, id);
CREATE INDEX keys_by_expires_at ON keys (tenant_id, coalesce(expires_at, 9223372036854775807), id);
CREATE INDEX keys_by_last_used_at ON keys (tenant_id, coalesce(last_used_at, -9223372036854775807), id);
-- An owner's keys, and the cascade when the owner is deleted.
CREATE INDEX keys_by_owner ON keys (tenant_id, owner_id, id);
-- The expiry sweep's queue: keys whose key.expired event may still be missing.
CREATE INDEX keys_expiry_unrecorded ON keys (expires_at, id)
    WHERE revoked_at IS NULL AND expiry_recorded = 0;

CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    hash       BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
) STRICT;

CREATE INDEX sessions_by_user ON sessions (tenant_id, user_id);

-- The audit trail. No foreign keys: events outlive what they name.
CREATE TABLE events (
    id              TEXT    NOT NULL PRIMARY KEY,
    tenant_id       TEXT    NOT NULL,
    time            INTEGER NOT NULL,
    action          TEXT    NOT NULL,
    actor_type      TEXT    NOT NULL,
    actor_id        TEXT    NOT NULL,
    actor_name      TEXT    NOT NULL,
    actor_user_id   TEXT    NOT NULL,
    target_type     TEXT    NOT NULL,
    target_id       TEXT    NOT NULL,
    target_name     TEXT    NOT NULL,
    target_owner_id TEXT    NOT NULL,
    ip              TEXT    NOT NULL,
    user_agent      TEXT    NOT NULL,
    details         TEXT    NOT NULL CHECK (json_type(details) = 'object')
) STRICT;

-- Newest first, alone and under each filter.
CREATE INDEX events_by_time ON events (tenant_id, time DESC, id DESC);
CREATE INDEX events_by_action ON events (tenant_id, action, time DESC, id DESC);
CREATE INDEX events_by_target ON events (tenant_id, target_type, target_id, time DESC, id DESC);
CREATE INDEX events_by_actor ON events (tenant_id, actor_id, time DESC, id DESC);
CREATE INDEX events_by_actor_user ON events (tenant_id, actor_user_id, time DESC, id DESC);
CREATE INDEX events_by_target_owner ON events (tenant_id, target_owner_id, time DESC, id DESC);

-- +goose Down
DROP TABLE events;
DROP TABLE sessions;
DROP TABLE keys;
DROP TABLE users;
DROP TABLE tenants;
