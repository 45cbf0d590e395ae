package keyward

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// Limits on key fields beyond the contract's name length.
const (
	maxNameLen        = 255
	maxDescriptionLen = 2000
	maxScopes         = 100
	maxScopeLen       = 128
	maxMetaBytes      = 16 << 10
	maxReasonLen      = 1000
	maxBulkIDs        = 1000
	// DefaultGracePeriod is how long a rotated key keeps working by default.
	DefaultGracePeriod = 24 * time.Hour
	maxGracePeriod     = 90 * 24 * time.Hour
)

// KeyInput is a request to create a key.
type KeyInput struct {
	Name        string
	Description string
	OwnerID     string // "": the caller
	Role        string // "": readonly
	Scopes      []string
	Meta        json.RawMessage
	ExpiresAt   *time.Time
	RateLimit   *RateLimit
}

// KeyPatch changes a key's name, description or rate limit.
type KeyPatch struct {
	Name        *string
	Description *string
	RateLimit   OptionalRateLimit
}

// OptionalRateLimit is a field that may be absent, null (no limit) or a limit.
type OptionalRateLimit struct {
	Set   bool
	Value *RateLimit
}

// Bounds of a per-key rate limit.
const (
	maxRateLimit       = 1_000_000_000
	maxRateLimitWindow = 86400
)

func checkRateLimit(r *RateLimit) error {
	if r == nil {
		return nil
	}
	if r.Limit < 1 || r.Limit > maxRateLimit {
		return Errorf(EInvalid, "rate_limit.limit must be between 1 and %d", maxRateLimit)
	}
	if r.WindowSeconds < 1 || r.WindowSeconds > maxRateLimitWindow {
		return Errorf(EInvalid, "rate_limit.window_seconds must be between 1 and %d", maxRateLimitWindow)
	}
	return nil
}

// KeyQuery is a request for one page of keys.
type KeyQuery struct {
	Q         string
	Type      string
	Status    string
	OwnerID   string
	Sort      string // column, "-" for descending; "": -created_at
	PageSize  int
	PageToken string
}

// BulkRevokeInput names what to revoke: exactly one of IDs, Type or All.
type BulkRevokeInput struct {
	IDs    []string
	Type   string
	All    bool
	Reason *string
}

// BulkFailure is a key a bulk revocation could not revoke.
type BulkFailure struct {
	ID      string `json:"id"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// BulkRevokeResult counts what a bulk revocation did.
type BulkRevokeResult struct {
	Revoked int
	Failed  []BulkFailure
}

// canSeeKey: a tenant admin sees every key of the tenant, anyone else their own.
func (p *Principal) canSeeKey(k *Key) bool {
	return k.TenantID == p.Tenant.ID && (p.IsAdmin() || k.OwnerID == p.User.ID)
}

// loadKey reads a key the caller may see; anything else is not found.
func loadKey(ctx context.Context, tx Tx, p *Principal, id string) (*Key, error) {
	k, err := tx.KeyByID(ctx, p.Tenant.ID, id)
	if err != nil {
		return nil, err
	}
	if !p.canSeeKey(k) {
		return nil, Errorf(ENotFound, "key not found")
	}
	return k, nil
}

// mayIssue decides who may create or rotate a key for an owner: a developer
// (licensed) for itself, a tenant admin for a system user; nobody for another person.
func (p *Principal) mayIssue(owner *User) error {
	if owner.Kind == KindSystem {
		if !p.IsAdmin() {
			return Errorf(EPermissionDenied, "only a tenant admin may issue keys for a system user")
		}
		return nil
	}
	if owner.ID != p.User.ID {
		return Errorf(EPermissionDenied, "keys of a person are issued only by that person")
	}
	if !p.User.IsDeveloper() {
		return Errorf(EDeveloperRequired, "creating a key needs the developer role")
	}
	if !p.User.Licensed {
		return Errorf(ELicenseRequired, "creating a key needs a license")
	}
	return nil
}

// mayRename: a developer its own keys, a tenant admin any key.
func (p *Principal) mayRename(k *Key) error {
	if p.IsAdmin() || k.OwnerID == p.User.ID && p.User.IsDeveloper() {
		return nil
	}
	return Errorf(EPermissionDenied, "renaming a key needs the developer role")
}

// mayDelete: a developer its own keys, a tenant admin a system user's keys.
// A tenant admin may not delete another person's key (it may revoke it).
func (p *Principal) mayDelete(k *Key) error {
	if k.OwnerID == p.User.ID && p.User.IsDeveloper() || k.Type == KindSystem && p.IsAdmin() {
		return nil
	}
	if k.OwnerID == p.User.ID {
		return Errorf(EPermissionDenied, "deleting a key needs the developer role")
	}
	return Errorf(EPermissionDenied, "a person's keys are deleted only by that person; revoke the key instead")
}

// mayChangeState: the owner its own key, a tenant admin any key.
func (p *Principal) mayChangeState(k *Key) error {
	if p.IsAdmin() || k.OwnerID == p.User.ID {
		return nil
	}
	return Errorf(EPermissionDenied, "only the owner or a tenant admin may change this key")
}

func checkScopes(scopes []string) ([]string, error) {
	if len(scopes) > maxScopes {
		return nil, Errorf(EInvalid, "at most %d scopes", maxScopes)
	}
	out := make([]string, 0, len(scopes))
	seen := map[string]bool{}
	for _, sc := range scopes {
		if sc == "" || len(sc) > maxScopeLen || strings.ContainsAny(sc, " \t\r\n,") {
			return nil, Errorf(EInvalid, "each scope must be 1 to %d characters without spaces or commas", maxScopeLen)
		}
		if err := checkText("scope", sc, 1, maxScopeLen); err != nil {
			return nil, err
		}
		if !seen[sc] {
			seen[sc] = true
			out = append(out, sc)
		}
	}
	return out, nil
}

func checkMeta(m json.RawMessage) (json.RawMessage, error) {
	if len(m) == 0 || string(m) == "null" {
		return json.RawMessage(`{}`), nil
	}
	if len(m) > maxMetaBytes {
		return nil, Errorf(EInvalid, "meta must be at most %d bytes", maxMetaBytes)
	}
	var obj map[string]any
	if err := json.Unmarshal(m, &obj); err != nil || obj == nil {
		return nil, Errorf(EInvalid, "meta must be a JSON object")
	}
	b, _ := json.Marshal(obj) // compact, canonical
	return b, nil
}

func checkKeyRole(r string) (string, error) {
	switch r {
	case "":
		return KeyRoleReadonly, nil
	case KeyRoleAdmin, KeyRoleReadonly:
		return r, nil
	}
	return "", Errorf(EInvalid, "role must be admin or readonly")
}

// defaultExpiry is a new key's expiry without an explicit one: the tenant's maximum, or never.
func defaultExpiry(set Settings, now time.Time) *time.Time {
	if set.MaxExpirationDays == nil {
		return nil
	}
	t := now.AddDate(0, 0, *set.MaxExpirationDays)
	return &t
}

// CreateKey issues a key and returns it with its secret, which is never shown again.
func (s *Service) CreateKey(ctx context.Context, p *Principal, in KeyInput) (*Key, string, error) {
	if err := p.canWrite(); err != nil {
		return nil, "", err
	}
	now := s.Now()
	name := strings.TrimSpace(in.Name)
	if err := checkText("name", name, 1, maxNameLen); err != nil {
		return nil, "", err
	}
	if err := checkText("description", in.Description, 0, maxDescriptionLen); err != nil {
		return nil, "", err
	}
	role, err := checkKeyRole(in.Role)
	if err != nil {
		return nil, "", err
	}
	scopes, err := checkScopes(in.Scopes)
	if err != nil {
		return nil, "", err
	}
	meta, err := checkMeta(in.Meta)
	if err != nil {
		return nil, "", err
	}
	if err := checkRateLimit(in.RateLimit); err != nil {
		return nil, "", err
	}
	var k *Key
	var secret string
	err = s.store.Update(ctx, func(tx Tx) error {
		t, err := tx.TenantByID(ctx, p.Tenant.ID)
		if err != nil {
			return err
		}
		if !t.Settings.APIKeysEnabled {
			return Errorf(EKeysDisabled, "API keys are switched off for this tenant")
		}
		owner := p.User
		if in.OwnerID != "" && in.OwnerID != p.User.ID {
			if !p.IsAdmin() {
				return Errorf(EPermissionDenied, "keys of another user are issued only by a tenant admin for a system user")
			}
			if owner, err = tx.UserByID(ctx, p.Tenant.ID, in.OwnerID); err != nil {
				return err
			}
		}
		if err := p.mayIssue(owner); err != nil {
			return err
		}
		expires := in.ExpiresAt
		if expires == nil {
			expires = defaultExpiry(t.Settings, now)
		} else {
			e := expires.UTC().Truncate(time.Microsecond)
			expires = &e
			if !e.After(now) {
				return Errorf(EInvalid, "expires_at must be in the future")
			}
			if max := defaultExpiry(t.Settings, now); max != nil && e.After(*max) {
				return Errorf(EExpirationTooLong, "expires_at is beyond the tenant's maximum of %d days", *t.Settings.MaxExpirationDays)
			}
		}
		if err := tx.LockUser(ctx, p.Tenant.ID, owner.ID); err != nil {
			return err
		}
		n, err := tx.CountLiveKeys(ctx, p.Tenant.ID, owner.ID, now)
		if err != nil {
			return err
		}
		if max := t.Settings.MaxKeysFor(owner.Kind); n >= max {
			return Errorf(EKeyLimitReached, "the owner already holds the maximum of %d keys", max)
		}
		k, secret, err = s.insertKey(ctx, tx, p, t, owner, &Key{
			Name: name, Description: in.Description, Role: role, Scopes: scopes, Meta: meta, ExpiresAt: expires,
			RateLimit: in.RateLimit,
		}, now, nil)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// insertKey draws the secret, stores the key and writes key.created.
func (s *Service) insertKey(ctx context.Context, tx Tx, p *Principal, t *Tenant, owner *User, k *Key, now time.Time, details map[string]any) (*Key, string, error) {
	secret, err := NewSecret(s.rand, t.Settings.KeyPrefix)
	if err != nil {
		return nil, "", err
	}
	k.ID = s.newID(PrefixKey)
	k.TenantID = t.ID
	k.OwnerID, k.OwnerName, k.OwnerEmail, k.Type = owner.ID, owner.Name, owner.Email, owner.Kind
	k.Hash = s.hasher.Hash(secret)
	k.Start = SecretStart(secret)
	k.CreatedAt, k.UpdatedAt = now, now
	if err := tx.CreateKey(ctx, k); err != nil {
		return nil, "", err
	}
	if details == nil {
		details = map[string]any{}
	}
	details["role"] = k.Role
	details["owner_id"] = owner.ID
	if k.ExpiresAt != nil {
		details["expires_at"] = *k.ExpiresAt
	}
	if err := tx.InsertEvents(ctx, s.event(ctx, now, t.ID, ActionKeyCreated, actorOf(p), keyRef(k), owner.ID, details)); err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

func equalRateLimit(a, b *RateLimit) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func actorOf(p *Principal) Actor {
	if p == nil {
		return SystemActor
	}
	return p.Actor()
}

// GetKey reads one key the caller may see.
func (s *Service) GetKey(ctx context.Context, p *Principal, id string) (*Key, error) {
	var k *Key
	err := s.store.View(ctx, func(tx Tx) (err error) {
		k, err = loadKey(ctx, tx, p, id)
		return err
	})
	return k, err
}

// ListKeys pages through the keys the caller may see.
func (s *Service) ListKeys(ctx context.Context, p *Principal, q KeyQuery) (*KeyPage, error) {
	f := KeyFilter{TenantID: p.Tenant.ID, Q: q.Q, Type: q.Type, Status: q.Status, OwnerID: q.OwnerID,
		PageToken: q.PageToken, Now: s.Now()}
	var err error
	if f.PageSize, err = checkPageSize(q.PageSize); err != nil {
		return nil, err
	}
	if len(q.Q) > 255 {
		return nil, Errorf(EInvalid, "q must be at most 255 characters")
	}
	switch q.Type {
	case "", KindUser, KindSystem:
	default:
		return nil, Errorf(EInvalid, "type must be user or system")
	}
	switch q.Status {
	case "", StatusActive, StatusInactive, StatusRevoked, StatusExpired:
	default:
		return nil, Errorf(EInvalid, "status must be active, inactive, revoked or expired")
	}
	sort := q.Sort
	if sort == "" {
		sort = "-created_at"
	}
	f.Desc = strings.HasPrefix(sort, "-")
	f.Sort = strings.TrimPrefix(sort, "-")
	if !validSort(f.Sort) {
		return nil, Errorf(EInvalid, "sort must be one of %s, optionally with a leading -", strings.Join(KeySortColumns, ", "))
	}
	if !p.IsAdmin() {
		if q.OwnerID != "" && q.OwnerID != p.User.ID {
			return &KeyPage{Keys: []*Key{}}, nil
		}
		f.OwnerID = p.User.ID
	}
	var page *KeyPage
	err = s.store.View(ctx, func(tx Tx) (err error) {
		page, err = tx.ListKeys(ctx, f)
		return err
	})
	return page, err
}

func validSort(col string) bool {
	for _, c := range KeySortColumns {
		if c == col {
			return true
		}
	}
	return false
}

// UpdateKey renames a key or changes its description.
func (s *Service) UpdateKey(ctx context.Context, p *Principal, id string, patch KeyPatch) (*Key, error) {
	if err := p.canWrite(); err != nil {
		return nil, err
	}
	if patch.Name != nil {
		n := strings.TrimSpace(*patch.Name)
		if err := checkText("name", n, 1, maxNameLen); err != nil {
			return nil, err
		}
		patch.Name = &n
	}
	if patch.Description != nil {
		if err := checkText("description", *patch.Description, 0, maxDescriptionLen); err != nil {
			return nil, err
		}
	}
	if err := checkRateLimit(patch.RateLimit.Value); err != nil {
		return nil, err
	}
	return s.changeKey(ctx, p, id, p.mayRename, func(k *Key, now time.Time) (string, map[string]any, error) {
		details := map[string]any{}
		if patch.Name != nil && *patch.Name != k.Name {
			details["name"] = map[string]any{"from": k.Name, "to": *patch.Name}
			k.Name = *patch.Name
		}
		if patch.Description != nil && *patch.Description != k.Description {
			details["description"] = map[string]any{"from": k.Description, "to": *patch.Description}
			k.Description = *patch.Description
		}
		if patch.RateLimit.Set && !equalRateLimit(patch.RateLimit.Value, k.RateLimit) {
			details["rate_limit"] = map[string]any{"from": k.RateLimit, "to": patch.RateLimit.Value}
			k.RateLimit = patch.RateLimit.Value
		}
		return ActionKeyUpdated, details, nil
	})
}

// DeactivateKey turns an active key off, reversibly.
func (s *Service) DeactivateKey(ctx context.Context, p *Principal, id string) (*Key, error) {
	return s.changeKey(ctx, p, id, p.mayChangeState, func(k *Key, now time.Time) (string, map[string]any, error) {
		if st := k.Status(now); st != StatusActive {
			return "", nil, Errorf(EConflict, "only an active key can be deactivated; this key is %s", st)
		}
		k.Disabled = true
		return ActionKeyDeactivated, nil, nil
	})
}

// ReactivateKey turns an inactive key back on.
func (s *Service) ReactivateKey(ctx context.Context, p *Principal, id string) (*Key, error) {
	return s.changeKey(ctx, p, id, p.mayChangeState, func(k *Key, now time.Time) (string, map[string]any, error) {
		if st := k.Status(now); st != StatusInactive {
			return "", nil, Errorf(EConflict, "only an inactive key can be reactivated; this key is %s", st)
		}
		k.Disabled = false
		return ActionKeyReactivated, nil, nil
	})
}

// RevokeKey revokes a key for good.
func (s *Service) RevokeKey(ctx context.Context, p *Principal, id string, reason *string) (*Key, error) {
	if err := checkReason(reason); err != nil {
		return nil, err
	}
	return s.changeKey(ctx, p, id, p.mayChangeState, func(k *Key, now time.Time) (string, map[string]any, error) {
		if err := revoke(k, p, now, reason); err != nil {
			return "", nil, err
		}
		return ActionKeyRevoked, revokeDetails(reason), nil
	})
}

func checkReason(reason *string) error {
	if reason == nil {
		return nil
	}
	return checkText("reason", *reason, 0, maxReasonLen)
}

func revokeDetails(reason *string) map[string]any {
	if reason == nil {
		return nil
	}
	return map[string]any{"reason": *reason}
}

// revoke marks k revoked, or refuses with the contract's not_revocable.
func revoke(k *Key, p *Principal, now time.Time, reason *string) error {
	switch st := k.Status(now); st {
	case StatusRevoked:
		return Errorf(ENotRevocable, "%s: the key is already revoked", notRevocableMessage)
	case StatusExpired:
		return Errorf(ENotRevocable, "%s: the key has expired", notRevocableMessage)
	}
	by := p.User.ID
	k.RevokedAt, k.RevokedBy, k.RevokeReason = &now, &by, reason
	return nil
}

// changeKey is the shape of every single-key change: load what the caller may
// see, check the permission, apply, store, write the event, all in one
// transaction, and tell caches after commit.
func (s *Service) changeKey(ctx context.Context, p *Principal, id string, may func(*Key) error,
	apply func(k *Key, now time.Time) (action string, details map[string]any, err error)) (*Key, error) {
	if err := p.canWrite(); err != nil {
		return nil, err
	}
	now := s.Now()
	var k *Key
	err := s.store.Update(ctx, func(tx Tx) (err error) {
		if k, err = loadKey(ctx, tx, p, id); err != nil {
			return err
		}
		if err := may(k); err != nil {
			return err
		}
		action, details, err := apply(k, now)
		if err != nil {
			return err
		}
		k.UpdatedAt = now
		if err := tx.UpdateKey(ctx, k); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, s.event(ctx, now, k.TenantID, action, p.Actor(), keyRef(k), k.OwnerID, details))
	})
	if err != nil {
		return nil, err
	}
	s.onChange(Change{KeyHashes: [][]byte{k.Hash}})
	return k, nil
}

// DeleteKey removes a key whatever its status; verification then answers NOT_FOUND.
func (s *Service) DeleteKey(ctx context.Context, p *Principal, id string) error {
	if err := p.canWrite(); err != nil {
		return err
	}
	now := s.Now()
	var k *Key
	err := s.store.Update(ctx, func(tx Tx) (err error) {
		if k, err = loadKey(ctx, tx, p, id); err != nil {
			return err
		}
		if err := p.mayDelete(k); err != nil {
			return err
		}
		if err := tx.DeleteKey(ctx, k.TenantID, k.ID); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, s.event(ctx, now, k.TenantID, ActionKeyDeleted, p.Actor(), keyRef(k), k.OwnerID,
			map[string]any{"status": k.Status(now)}))
	})
	if err != nil {
		return err
	}
	s.onChange(Change{KeyHashes: [][]byte{k.Hash}})
	return nil
}

// RotateKey issues a successor with the same name, owner, role, scopes and
// meta, and lets the old key run out after the grace period. It never
// lengthens the old key's life.
func (s *Service) RotateKey(ctx context.Context, p *Principal, id string, grace *time.Duration) (*Key, string, error) {
	if err := p.canWrite(); err != nil {
		return nil, "", err
	}
	g := DefaultGracePeriod
	if grace != nil {
		g = *grace
	}
	if g < 0 || g > maxGracePeriod {
		return nil, "", Errorf(EInvalid, "grace_period_seconds must be between 0 and %d", int(maxGracePeriod/time.Second))
	}
	now := s.Now()
	var old, k *Key
	var secret string
	err := s.store.Update(ctx, func(tx Tx) (err error) {
		if old, err = loadKey(ctx, tx, p, id); err != nil {
			return err
		}
		t, err := tx.TenantByID(ctx, p.Tenant.ID)
		if err != nil {
			return err
		}
		owner, err := tx.UserByID(ctx, t.ID, old.OwnerID)
		if err != nil {
			return err
		}
		if err := p.mayIssue(owner); err != nil {
			return err
		}
		if !t.Settings.APIKeysEnabled {
			return Errorf(EKeysDisabled, "API keys are switched off for this tenant")
		}
		if st := old.Status(now); st != StatusActive {
			return Errorf(EConflict, "only an active key can be rotated; this key is %s", st)
		}
		k, secret, err = s.insertKey(ctx, tx, p, t, owner, &Key{
			Name: old.Name, Description: old.Description, Role: old.Role, Scopes: old.Scopes, Meta: old.Meta,
			ExpiresAt: defaultExpiry(t.Settings, now), RateLimit: old.RateLimit,
		}, now, map[string]any{"rotated_from": old.ID})
		if err != nil {
			return err
		}
		end := now.Add(g)
		if old.ExpiresAt == nil || end.Before(*old.ExpiresAt) {
			old.ExpiresAt = &end
		}
		old.UpdatedAt = now
		if err := tx.UpdateKey(ctx, old); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, s.event(ctx, now, t.ID, ActionKeyRotated, p.Actor(), keyRef(old), old.OwnerID,
			map[string]any{"new_key_id": k.ID, "grace_period_seconds": int64(g / time.Second), "expires_at": *old.ExpiresAt}))
	})
	if err != nil {
		return nil, "", err
	}
	s.onChange(Change{KeyHashes: [][]byte{old.Hash}})
	return k, secret, nil
}

// BulkRevoke revokes a selection of keys, every key of one owner type, or
// every key of the tenant, with one event per revoked key, in one transaction.
func (s *Service) BulkRevoke(ctx context.Context, p *Principal, in BulkRevokeInput) (*BulkRevokeResult, error) {
	if err := p.canWrite(); err != nil {
		return nil, err
	}
	n := 0
	if in.IDs != nil {
		n++
	}
	if in.Type != "" {
		n++
	}
	if in.All {
		n++
	}
	if n != 1 {
		return nil, Errorf(EInvalid, "give exactly one of ids, type or all: true")
	}
	if err := checkReason(in.Reason); err != nil {
		return nil, err
	}
	if in.IDs != nil && (len(in.IDs) == 0 || len(in.IDs) > maxBulkIDs) {
		return nil, Errorf(EInvalid, "ids must hold 1 to %d key IDs", maxBulkIDs)
	}
	if in.Type != "" && in.Type != KindUser && in.Type != KindSystem {
		return nil, Errorf(EInvalid, "type must be user or system")
	}
	if in.IDs == nil && !p.IsAdmin() {
		return nil, Errorf(EPermissionDenied, "only a tenant admin may revoke by type or all keys")
	}
	now := s.Now()
	res := &BulkRevokeResult{Failed: []BulkFailure{}}
	var hashes [][]byte
	err := s.store.Update(ctx, func(tx Tx) error {
		res.Revoked, res.Failed, hashes = 0, res.Failed[:0], nil
		details := map[string]any{"bulk": true}
		if in.Reason != nil {
			details["reason"] = *in.Reason
		}
		if in.IDs == nil {
			// By type or all: the store revokes the set and writes each
			// key's event itself, without the keys passing through here.
			revoked, err := tx.RevokeKeys(ctx, RevokeSpec{TenantID: p.Tenant.ID, Type: in.Type, At: now,
				By: p.User.ID, Reason: in.Reason,
				Event: s.event(ctx, now, p.Tenant.ID, ActionKeyRevoked, p.Actor(), Ref{Type: TargetKey}, "", details),
				NewID: func() (string, error) { return NewID(s.rand, PrefixEvent) }})
			if err != nil {
				return err
			}
			for _, k := range revoked {
				hashes = append(hashes, k.Hash)
			}
			res.Revoked = len(revoked)
			return nil
		}
		var revoked []*Key
		// Keys are taken in ID order, whatever the request's order, so
		// that two batches over the same keys lock them in the same
		// order (a store may lock what a write transaction reads);
		// failures are reported in the request's order.
		ids := slices.Clone(in.IDs)
		slices.Sort(ids)
		ids = slices.Compact(ids)
		failed := make(map[string]BulkFailure)
		for _, id := range ids {
			k, err := loadKey(ctx, tx, p, id)
			if err == nil {
				err = revoke(k, p, now, in.Reason)
			}
			if err != nil {
				code := ErrorCode(err)
				if code == EInternal {
					return err
				}
				msg := ErrorMessage(err)
				if code == ENotRevocable {
					msg = notRevocableMessage
				}
				failed[id] = BulkFailure{ID: id, Code: code, Message: msg}
				continue
			}
			k.UpdatedAt = now
			if err := tx.UpdateKey(ctx, k); err != nil {
				return err
			}
			revoked = append(revoked, k)
		}
		for _, id := range in.IDs {
			if f, ok := failed[id]; ok {
				res.Failed = append(res.Failed, f)
				delete(failed, id) // a repeated ID is reported once
			}
		}
		events := make([]*Event, len(revoked))
		for i, k := range revoked {
			events[i] = s.event(ctx, now, k.TenantID, ActionKeyRevoked, p.Actor(), keyRef(k), k.OwnerID, details)
			hashes = append(hashes, k.Hash)
		}
		res.Revoked = len(revoked)
		return tx.InsertEvents(ctx, events...)
	})
	if err != nil {
		return nil, err
	}
	if len(hashes) > 0 {
		s.onChange(Change{KeyHashes: hashes})
	}
	return res, nil
}
