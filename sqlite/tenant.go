package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/keyward/keyward"
)

const tenantColumns = `id, name, created_at, api_keys_enabled, max_expiration_days,
	max_keys_per_user, max_keys_per_service_user, expiry_notice_days, key_prefix`

var (
	qInsertTenant = writeQuery(`INSERT INTO tenants (` + tenantColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	qTenantByID   = readQuery(`SELECT ` + tenantColumns + ` FROM tenants WHERE id = ?`)
	qTenantByName = readQuery(`SELECT ` + tenantColumns + ` FROM tenants WHERE name = ?`)
	qUpdateTenant = writeQuery(`UPDATE tenants SET api_keys_enabled = ?, max_expiration_days = ?,
		max_keys_per_user = ?, max_keys_per_service_user = ?, expiry_notice_days = ?, key_prefix = ?
		WHERE id = ?`)
)

func (t *tx) CreateTenant(ctx context.Context, tn *keyward.Tenant) error {
	if tn.ID == "" {
		return errors.New("sqlite: create tenant: empty id")
	}
	s := tn.Settings
	_, err := t.exec(ctx, qInsertTenant, tn.ID, tn.Name, micros(tn.CreatedAt),
		s.APIKeysEnabled, nullInt(s.MaxExpirationDays), s.MaxKeysPerUser,
		s.MaxKeysPerServiceUser, s.ExpiryNoticeDays, s.KeyPrefix)
	if isUnique(err) {
		return keyward.Errorf(keyward.EConflict, "a tenant with this name already exists")
	}
	if err != nil {
		return wrap("create tenant", err)
	}
	return nil
}

func (t *tx) TenantByID(ctx context.Context, id string) (*keyward.Tenant, error) {
	return scanTenant(t.queryRow(ctx, qTenantByID, id))
}

// TenantByName finds a tenant by its name, compared case-insensitively as the
// unique constraint does.
func (t *tx) TenantByName(ctx context.Context, name string) (*keyward.Tenant, error) {
	return scanTenant(t.queryRow(ctx, qTenantByName, name))
}

func (t *tx) UpdateSettings(ctx context.Context, tenantID string, s keyward.Settings) error {
	res, err := t.exec(ctx, qUpdateTenant, s.APIKeysEnabled, nullInt(s.MaxExpirationDays),
		s.MaxKeysPerUser, s.MaxKeysPerServiceUser, s.ExpiryNoticeDays, s.KeyPrefix, tenantID)
	if err != nil {
		return wrap("update settings", err)
	}
	return mustChange("update settings", res, "tenant not found")
}

func scanTenant(row *sql.Row) (*keyward.Tenant, error) {
	var (
		tn      keyward.Tenant
		created int64
		maxDays sql.NullInt64
	)
	s := &tn.Settings
	err := row.Scan(&tn.ID, &tn.Name, &created, &s.APIKeysEnabled, &maxDays,
		&s.MaxKeysPerUser, &s.MaxKeysPerServiceUser, &s.ExpiryNoticeDays, &s.KeyPrefix)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, keyward.Errorf(keyward.ENotFound, "tenant not found")
	}
	if err != nil {
		return nil, wrap("read tenant", err)
	}
	tn.CreatedAt = fromMicros(created)
	if maxDays.Valid {
		d := int(maxDays.Int64)
		s.MaxExpirationDays = &d
	}
	return &tn, nil
}
