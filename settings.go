package keyward

import (
	"context"
	"time"
)

// SettingsPatch changes some settings. MaxExpirationDays distinguishes
// "absent" (Set false) from "null" (Set true, Value nil: no limit).
type SettingsPatch struct {
	APIKeysEnabled        *bool
	MaxExpirationDays     OptionalInt
	MaxKeysPerUser        *int
	MaxKeysPerServiceUser *int
	ExpiryNoticeDays      *int
	KeyPrefix             *string
}

// OptionalInt is a field that may be absent, null or a number.
type OptionalInt struct {
	Set   bool
	Value *int
}

// maxExpirationDaysCap keeps dates computable; the contract sets no upper bound.
const maxExpirationDaysCap = 1_000_000

// GetSettings reads the tenant's settings; everyone in the tenant may.
func (s *Service) GetSettings(ctx context.Context, p *Principal) (Settings, error) {
	var set Settings
	err := s.store.View(ctx, func(tx Tx) error {
		t, err := tx.TenantByID(ctx, p.Tenant.ID)
		if err == nil {
			set = t.Settings
		}
		return err
	})
	return set, err
}

// UpdateSettings changes the tenant's settings (tenant admins only). Limits
// apply to keys created afterwards; the switch applies to every key at once.
func (s *Service) UpdateSettings(ctx context.Context, p *Principal, patch SettingsPatch) (Settings, error) {
	if err := p.canWrite(); err != nil {
		return Settings{}, err
	}
	if err := p.requireAdmin(); err != nil {
		return Settings{}, err
	}
	if v := patch.MaxExpirationDays.Value; patch.MaxExpirationDays.Set && v != nil && (*v < 1 || *v > maxExpirationDaysCap) {
		return Settings{}, Errorf(EInvalid, "max_expiration_days must be null or between 1 and %d", maxExpirationDaysCap)
	}
	if v := patch.MaxKeysPerUser; v != nil && (*v < 1 || *v > 1000) {
		return Settings{}, Errorf(EInvalid, "max_keys_per_user must be between 1 and 1000")
	}
	if v := patch.MaxKeysPerServiceUser; v != nil && (*v < 1 || *v > 1000) {
		return Settings{}, Errorf(EInvalid, "max_keys_per_service_user must be between 1 and 1000")
	}
	if v := patch.ExpiryNoticeDays; v != nil && (*v < 0 || *v > 365) {
		return Settings{}, Errorf(EInvalid, "expiry_notice_days must be between 0 and 365")
	}
	if v := patch.KeyPrefix; v != nil && !ValidKeyPrefix(*v) {
		return Settings{}, Errorf(EInvalid, "key_prefix must be 2 to 12 characters of a-z and 0-9")
	}
	now := s.Now()
	var out Settings
	err := s.store.Update(ctx, func(tx Tx) error {
		t, err := tx.TenantByID(ctx, p.Tenant.ID)
		if err != nil {
			return err
		}
		set := t.Settings
		details := map[string]any{}
		change := func(name string, from, to any) { details[name] = map[string]any{"from": from, "to": to} }
		if v := patch.APIKeysEnabled; v != nil && *v != set.APIKeysEnabled {
			change("api_keys_enabled", set.APIKeysEnabled, *v)
			set.APIKeysEnabled = *v
		}
		if patch.MaxExpirationDays.Set && !equalIntPtr(patch.MaxExpirationDays.Value, set.MaxExpirationDays) {
			change("max_expiration_days", set.MaxExpirationDays, patch.MaxExpirationDays.Value)
			set.MaxExpirationDays = patch.MaxExpirationDays.Value
		}
		if v := patch.MaxKeysPerUser; v != nil && *v != set.MaxKeysPerUser {
			change("max_keys_per_user", set.MaxKeysPerUser, *v)
			set.MaxKeysPerUser = *v
		}
		if v := patch.MaxKeysPerServiceUser; v != nil && *v != set.MaxKeysPerServiceUser {
			change("max_keys_per_service_user", set.MaxKeysPerServiceUser, *v)
			set.MaxKeysPerServiceUser = *v
		}
		if v := patch.ExpiryNoticeDays; v != nil && *v != set.ExpiryNoticeDays {
			change("expiry_notice_days", set.ExpiryNoticeDays, *v)
			set.ExpiryNoticeDays = *v
		}
		if v := patch.KeyPrefix; v != nil && *v != set.KeyPrefix {
			change("key_prefix", set.KeyPrefix, *v)
			set.KeyPrefix = *v
		}
		out = set
		if len(details) == 0 {
			return nil
		}
		if err := tx.UpdateSettings(ctx, t.ID, set); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, s.event(ctx, now, t.ID, ActionSettingsUpdated, p.Actor(),
			Ref{Type: TargetSettings, ID: t.ID, Name: t.Name}, "", details))
	})
	if err != nil {
		return Settings{}, err
	}
	s.onChange(Change{TenantID: p.Tenant.ID})
	return out, nil
}

func equalIntPtr(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// EventQuery is a request for one page of events.
type EventQuery struct {
	Action    string
	KeyID     string
	ActorID   string
	Since     *time.Time
	Until     *time.Time
	PageSize  int
	PageToken string
}

// ListEvents pages through the audit trail, newest first. A tenant admin sees
// the whole tenant's; anyone else the events they did or that concern them or
// their keys.
func (s *Service) ListEvents(ctx context.Context, p *Principal, q EventQuery) (*EventPage, error) {
	f := EventFilter{TenantID: p.Tenant.ID, Action: q.Action, KeyID: q.KeyID, ActorID: q.ActorID,
		Since: q.Since, Until: q.Until, PageToken: q.PageToken}
	var err error
	if f.PageSize, err = checkPageSize(q.PageSize); err != nil {
		return nil, err
	}
	if len(q.Action) > 64 || len(q.KeyID) > 64 || len(q.ActorID) > 64 {
		return nil, Errorf(EInvalid, "filters must be at most 64 characters")
	}
	if !p.IsAdmin() {
		f.VisibleTo = p.User.ID
	}
	var page *EventPage
	err = s.store.View(ctx, func(tx Tx) (err error) {
		page, err = tx.ListEvents(ctx, f)
		return err
	})
	return page, err
}
