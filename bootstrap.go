package keyward

import (
	"context"
	"strings"
)

// BootstrapInput names the first tenant, its administrator and their password.
type BootstrapInput struct {
	Tenant   string
	Email    string
	Name     string  // "": the email's local part
	Password *string // nil: the administrator logs in only with the key
}

// BootstrapResult is what a script needs to go on: the IDs and the one-time secret.
type BootstrapResult struct {
	TenantID string `json:"tenant_id"`
	UserID   string `json:"user_id"`
	KeyID    string `json:"key_id"`
	Secret   string `json:"secret"`
}

// Bootstrap creates the tenant (API keys on) if it does not exist, a user with
// tenant_admin and developer, and an admin key for that user that never
// expires, all in one transaction. A second bootstrap of the same email in
// the same tenant is EConflict.
func (s *Service) Bootstrap(ctx context.Context, in BootstrapInput) (*BootstrapResult, error) {
	name := strings.TrimSpace(in.Tenant)
	if err := checkText("tenant", name, 1, maxNameLen); err != nil {
		return nil, err
	}
	email, err := checkEmail(in.Email)
	if err != nil {
		return nil, err
	}
	userName := strings.TrimSpace(in.Name)
	if userName == "" {
		userName = email[:strings.IndexByte(email, '@')]
	}
	u := &User{ID: s.newID(PrefixUser), Email: email, Name: userName, Kind: KindUser,
		Roles: []string{RoleTenantAdmin, RoleDeveloper}, Licensed: true}
	if in.Password != nil {
		if err := checkPassword(*in.Password); err != nil {
			return nil, err
		}
		if u.PasswordHash, err = HashPassword(s.rand, s.pw, *in.Password); err != nil {
			return nil, err
		}
	}
	now := s.Now()
	u.CreatedAt, u.UpdatedAt = now, now
	var res *BootstrapResult
	err = s.store.Update(ctx, func(tx Tx) error {
		t, err := tx.TenantByName(ctx, name)
		if IsCode(err, ENotFound) {
			set := DefaultSettings()
			set.APIKeysEnabled = true
			t = &Tenant{ID: s.newID(PrefixTenant), Name: name, CreatedAt: now, Settings: set}
			if err := tx.CreateTenant(ctx, t); err != nil {
				return err
			}
			err = tx.InsertEvents(ctx, s.event(ctx, now, t.ID, ActionTenantCreated, SystemActor,
				Ref{Type: TargetTenant, ID: t.ID, Name: t.Name}, "", nil))
		}
		if err != nil {
			return err
		}
		u.TenantID = t.ID
		if err := tx.CreateUser(ctx, u); err != nil {
			if IsCode(err, EConflict) {
				return Errorf(EConflict, "a user with email %s already exists in tenant %q", email, name)
			}
			return err
		}
		if err := tx.InsertEvents(ctx, s.event(ctx, now, t.ID, ActionUserCreated, SystemActor, userRef(u), u.ID,
			map[string]any{"email": u.Email, "kind": u.Kind, "roles": u.Roles, "licensed": u.Licensed, "bootstrap": true})); err != nil {
			return err
		}
		k, secret, err := s.insertKey(ctx, tx, nil, t, u, &Key{Name: "bootstrap", Role: KeyRoleAdmin,
			Scopes: []string{}, Meta: []byte(`{}`)}, now, map[string]any{"bootstrap": true})
		if err != nil {
			return err
		}
		res = &BootstrapResult{TenantID: t.ID, UserID: u.ID, KeyID: k.ID, Secret: secret}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// SweepExpired writes the key.expired event of keys whose expiry has passed,
// at most limit of them; it returns how many it recorded.
func (s *Service) SweepExpired(ctx context.Context, limit int) (int, error) {
	now := s.Now()
	n := 0
	err := s.store.Update(ctx, func(tx Tx) error {
		keys, err := tx.ExpiredUnrecorded(ctx, now, limit)
		if err != nil || len(keys) == 0 {
			return err
		}
		ids := make([]string, len(keys))
		events := make([]*Event, len(keys))
		for i, k := range keys {
			ids[i] = k.ID
			events[i] = s.event(ctx, now, k.TenantID, ActionKeyExpired, SystemActor, keyRef(k), k.OwnerID,
				map[string]any{"expires_at": *k.ExpiresAt})
		}
		if err := tx.MarkExpiryRecorded(ctx, ids); err != nil {
			return err
		}
		n = len(keys)
		return tx.InsertEvents(ctx, events...)
	})
	return n, err
}
