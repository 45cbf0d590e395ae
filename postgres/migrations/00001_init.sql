-- Keyward's first PostgreSQL schema, the counterpart of sqlite's 00001_init.
-- Times are bigint unix microseconds in UTC (exact round trips, the same
-- sentinels as SQLite for NULL placement in sorts). Every identifier and
-- sortable text column is COLLATE "C": comparisons are byte-wise, and lower()
-- over them folds ASCII only, which is SQLite's NOCASE. Case-insensitive
-- uniqueness and sorting go through lower() expression indexes. JSON lists and
-- details are jsonb; meta is json, which keeps the client's text as it was.

-- +goose Up
CREATE TABLE tenants (
    id                        text COLLATE "C" NOT NULL PRIMARY KEY,
    name                      text COLLATE "C" NOT NULL,
    created_at                bigint  NOT NULL,
    api_keys_enabled          boolean NOT NULL,
    max_expiration_days       integer,
    max_keys_per_user         integer NOT NULL,
    max_keys_per_service_user integer NOT NULL,
    expiry_notice_days        integer NOT NULL,
    key_prefix                text    NOT NULL
);

CREATE UNIQUE INDEX tenants_by_name ON tenants (lower(name));

CREATE TABLE users (
    id            text COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id     text COLLATE "C" NOT NULL REFERENCES tenants (id),
    email         text COLLATE "C" NOT NULL,
    name          text COLLATE "C" NOT NULL,
    kind          text COLLATE "C" NOT NULL,
    roles         jsonb   NOT NULL CHECK (jsonb_typeof(roles) = 'array'),
    licensed      boolean NOT NULL,
    password_hash text    NOT NULL,
    created_at    bigint  NOT NULL,
    updated_at    bigint  NOT NULL,
    -- The target of the (tenant_id, owner) foreign keys below, so that a key or
    -- a session can never belong to a user of another tenant.
    UNIQUE (tenant_id, id)
);

CREATE UNIQUE INDEX users_by_tenant_email ON users (tenant_id, lower(email));
CREATE INDEX users_by_name ON users (tenant_id, lower(name), id);
CREATE INDEX users_by_email ON users (lower(email));

CREATE TABLE keys (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id       text COLLATE "C" NOT NULL,
    owner_id        text COLLATE "C" NOT NULL,
    name            text COLLATE "C" NOT NULL,
    description     text    NOT NULL,
    role            text COLLATE "C" NOT NULL,
    scopes          jsonb   NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
    meta            json    NOT NULL CHECK (json_typeof(meta) = 'object'),
    hash            bytea   NOT NULL UNIQUE,
    start           text    NOT NULL,
    disabled        boolean NOT NULL,
    created_at      bigint  NOT NULL,
    updated_at      bigint  NOT NULL,
    expires_at      bigint,
    last_used_at    bigint,
    revoked_at      bigint,
    revoked_by      text,
    revoke_reason   text,
    -- true once the key.expired event of this key exists.
    expiry_recorded boolean NOT NULL DEFAULT false,
    FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- One index per stored sort column, in the exact form the list query orders by.
CREATE INDEX keys_by_name ON keys (tenant_id, lower(name), id);
CREATE INDEX keys_by_id ON keys (tenant_id, lower(id), id);
CREATE INDEX keys_by_role ON keys (tenant_id, lower(role), id);
CREATE INDEX keys_by_created_at ON keys (tenant_id, created_at, id);
CREATE INDEX keys_by_updated_at ON keys (tenant_id, updated_at, id);
CREATE INDEX keys_by_expires_at ON keys (tenant_id, coalesce(expires_at, 9223372036854775807), id);
CREATE INDEX keys_by_last_used_at ON keys (tenant_id, coalesce(last_used_at, -9223372036854775807), id);
CREATE INDEX keys_by_owner ON keys (tenant_id, owner_id, id);
CREATE INDEX keys_expiry_unrecorded ON keys (expires_at, id)
    WHERE revoked_at IS NULL AND NOT expiry_recorded;

CREATE TABLE sessions (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id  text COLLATE "C" NOT NULL,
    user_id    text COLLATE "C" NOT NULL,
    hash       bytea  NOT NULL UNIQUE,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX sessions_by_user ON sessions (tenant_id, user_id);

-- The audit trail. No foreign keys: events outlive what they name.
CREATE TABLE events (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id       text COLLATE "C" NOT NULL,
    time            bigint NOT NULL,
    action          text COLLATE "C" NOT NULL,
    actor_type      text COLLATE "C" NOT NULL,
    actor_id        text COLLATE "C" NOT NULL,
    actor_name      text NOT NULL,
    actor_user_id   text COLLATE "C" NOT NULL,
    target_type     text COLLATE "C" NOT NULL,
    target_id       text COLLATE "C" NOT NULL,
    target_name     text NOT NULL,
    target_owner_id text COLLATE "C" NOT NULL,
    ip              text NOT NULL,
    user_agent      text NOT NULL,
    details         jsonb NOT NULL CHECK (jsonb_typeof(details) = 'object')
);

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
