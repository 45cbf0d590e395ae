package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
)

const tenantColumns = `id, name, created_at, api_keys_enabled, max_expiration_days,
	max_keys_per_user, max_keys_per_service_user, expiry_notice_days, key_prefix`

const (
	qInsertTenant = `INSERT INTO tenants (` + tenantColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	qTenantByID   = `SELECT ` + tenantColumns + ` FROM tenants WHERE id = $1`
	qTenantByName = `SELECT ` + tenantColumns + ` FROM tenants WHERE lower(name) = $1`
	qUpdateTenant = `UPDATE tenants SET api_keys_enabled = $1, max_expiration_days = $2,
		max_keys_per_user = $3, max_keys_per_service_user = $4, expiry_notice_days = $5, key_prefix = $6
		WHERE id = $7`
)

func (t *tx) CreateTenant(ctx context.Context, tn *keyward.Tenant) error {
	if tn.ID == "" {
		return errors.New("postgres: create tenant: empty id")
	}
	s := tn.Settings
	_, err := t.tx.Exec(ctx, qInsertTenant, tn.ID, tn.Name, micros(tn.CreatedAt),
		s.APIKeysEnabled, s.MaxExpirationDays, s.MaxKeysPerUser,
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
	return scanTenant(t.tx.QueryRow(ctx, qTenantByID, id))
}

// TenantByName finds a tenant by its name, compared case-insensitively (ASCII)
// as the unique index does.
func (t *tx) TenantByName(ctx context.Context, name string) (*keyward.Tenant, error) {
	return scanTenant(t.tx.QueryRow(ctx, qTenantByName, fold(name)))
}

func (t *tx) UpdateSettings(ctx context.Context, tenantID string, s keyward.Settings) error {
	tag, err := t.tx.Exec(ctx, qUpdateTenant, s.APIKeysEnabled, s.MaxExpirationDays,
		s.MaxKeysPerUser, s.MaxKeysPerServiceUser, s.ExpiryNoticeDays, s.KeyPrefix, tenantID)
	if err != nil {
		return wrap("update settings", err)
	}
	return mustChange(tag, "tenant not found")
}

func scanTenant(row pgx.Row) (*keyward.Tenant, error) {
	var (
		tn      keyward.Tenant
		created int64
		maxDays *int32
	)
	s := &tn.Settings
	var perUser, perService, notice int32
	err := row.Scan(&tn.ID, &tn.Name, &created, &s.APIKeysEnabled, &maxDays,
		&perUser, &perService, &notice, &s.KeyPrefix)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, keyward.Errorf(keyward.ENotFound, "tenant not found")
	}
	if err != nil {
		return nil, wrap("read tenant", err)
	}
	s.MaxKeysPerUser, s.MaxKeysPerServiceUser, s.ExpiryNoticeDays = int(perUser), int(perService), int(notice)
	tn.CreatedAt = fromMicros(created)
	if maxDays != nil {
		d := int(*maxDays)
		s.MaxExpirationDays = &d
	}
	return &tn, nil
}
