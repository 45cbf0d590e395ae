package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward"
)

func testKeys(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser, keyward.RoleDeveloper)
	svc := mustUser(t, s, tn.ID, "Billing", "billing@svc.example", keyward.KindSystem)

	tests := []struct {
		name  string
		owner *keyward.User
		key   *keyward.Key
		// want is the key as read back, before the owner fields are added.
		want *keyward.Key
	}{{
		name:  "minimal",
		owner: ada,
		key: &keyward.Key{Name: "minimal", Role: keyward.KeyRoleReadonly,
			Start: "kw_Zz09", CreatedAt: now, UpdatedAt: now},
		want: &keyward.Key{Name: "minimal", Role: keyward.KeyRoleReadonly, Scopes: []string{},
			Meta: json.RawMessage(`{}`), Start: "kw_Zz09", CreatedAt: now, UpdatedAt: now},
	}, {
		name:  "every field",
		owner: svc,
		key: &keyward.Key{Name: "Every field ✓", Description: "línea\nzwei", Role: keyward.KeyRoleAdmin,
			Scopes: []string{"invoices:read", "invoices:write"},
			Meta:   json.RawMessage(`{"team":"payments","n":3,"nested":{"ok":true,"list":[1,"a"]}}`),
			Start:  "acme_9xY", Disabled: true,
			CreatedAt: now.Add(-48 * time.Hour), UpdatedAt: now.Add(-time.Microsecond),
			ExpiresAt: ptr(now.Add(30 * 24 * time.Hour)), LastUsedAt: ptr(now.Add(-time.Minute)),
			RevokedAt: ptr(now.Add(-time.Second)), RevokedBy: ptr(ada.ID), RevokeReason: ptr("leaked in CI"),
		},
	}, {
		name:  "empty lists and reason",
		owner: ada,
		key: &keyward.Key{Name: "empty", Role: keyward.KeyRoleAdmin, Scopes: []string{},
			Meta: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now,
			RevokedAt: ptr(now), RevokedBy: ptr(""), RevokeReason: ptr("")},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := tt.key
			k.ID, k.TenantID, k.OwnerID, k.Hash = mustID(t, keyward.PrefixKey), tn.ID, tt.owner.ID, mustHash(t)
			want := tt.want
			if want == nil {
				c := *k
				want = &c
			}
			want.ID, want.TenantID, want.OwnerID, want.Hash = k.ID, k.TenantID, k.OwnerID, k.Hash
			want = withOwner(want, tt.owner)
			mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateKey(ctx, k) })

			if k.OwnerName != tt.owner.Name || k.OwnerEmail != tt.owner.Email || k.Type != tt.owner.Kind {
				t.Errorf("CreateKey left owner fields %q, %q, %q; want %q, %q, %q",
					k.OwnerName, k.OwnerEmail, k.Type, tt.owner.Name, tt.owner.Email, tt.owner.Kind)
			}
			byID := mustGetKey(t, s, tn.ID, k.ID)
			if diff := cmp.Diff(want, byID, cmpOpts); diff != "" {
				t.Errorf("KeyByID (-want +got):\n%s", diff)
			}
			if byID.Scopes == nil || byID.Meta == nil {
				t.Errorf("KeyByID: scopes %#v, meta %#v; want an empty list and object, never nil", byID.Scopes, byID.Meta)
			}
			checkUTC(t, "KeyByID", &byID.CreatedAt, &byID.UpdatedAt, byID.ExpiresAt, byID.LastUsedAt, byID.RevokedAt)
			byHash := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Key, error) {
				return tx.KeyByHash(ctx, k.Hash)
			})
			if diff := cmp.Diff(want, byHash, cmpOpts); diff != "" {
				t.Errorf("KeyByHash (-want +got):\n%s", diff)
			}
			_, err := getKey(s, other.ID, k.ID)
			wantCode(t, "KeyByID(another tenant)", err, keyward.ENotFound)
		})
	}

	_, err := getKey(s, tn.ID, "key_missing")
	wantCode(t, "KeyByID(missing)", err, keyward.ENotFound)
	_, err = get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Key, error) {
		return tx.KeyByHash(ctx, mustHash(t))
	})
	wantCode(t, "KeyByHash(unknown)", err, keyward.ENotFound)
}

func testCreateKeyRefusals(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	stranger := mustUser(t, s, other.ID, "Stranger", "s@example.com", keyward.KindUser)
	existing := mustKey(t, s, ada, "existing")

	tests := []struct {
		name string
		key  *keyward.Key
		code string
	}{
		{"duplicate hash", newKey(t, ada, "dup", func(k *keyward.Key) { k.Hash = existing.Hash }), keyward.EConflict},
		{"duplicate id", newKey(t, ada, "dup", func(k *keyward.Key) { k.ID = existing.ID }), keyward.EConflict},
		{"missing owner", newKey(t, ada, "orphan", func(k *keyward.Key) { k.OwnerID = "usr_missing" }), keyward.ENotFound},
		// A key belongs to a user of its own tenant.
		{"owner of another tenant", newKey(t, stranger, "cross", func(k *keyward.Key) { k.TenantID = tn.ID }), keyward.ENotFound},
	}
	for _, tt := range tests {
		err := update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateKey(ctx, tt.key) })
		wantCode(t, "CreateKey("+tt.name+")", err, tt.code)
	}
	page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) {
		return tx.ListKeys(ctx, keyward.KeyFilter{TenantID: tn.ID, Sort: "name", PageSize: 10, Now: now})
	})
	if page.Total != 1 {
		t.Errorf("after refused creates the tenant has %d keys, want 1", page.Total)
	}
}

func testOwnerKeys(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	bob := mustUser(t, s, tn.ID, "Bob", "bob@example.com", keyward.KindUser)
	want := []*keyward.Key{
		mustKey(t, s, ada, "active"),
		mustKey(t, s, ada, "inactive", func(k *keyward.Key) { k.Disabled = true }),
		mustKey(t, s, ada, "revoked", func(k *keyward.Key) { k.RevokedAt = ptr(now) }),
		mustKey(t, s, ada, "expired", func(k *keyward.Key) { k.ExpiresAt = ptr(now.Add(-time.Hour)) }),
	}
	mustKey(t, s, bob, "bob's")
	for i, k := range want {
		want[i] = withOwner(k, ada)
	}
	byID := func(a, b *keyward.Key) bool { return a.ID < b.ID }

	got := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) ([]*keyward.Key, error) {
		return tx.OwnerKeys(ctx, tn.ID, ada.ID)
	})
	if diff := cmp.Diff(want, got, cmpOpts, cmpopts.SortSlices(byID)); diff != "" {
		t.Errorf("OwnerKeys (-want +got):\n%s", diff)
	}
	got = mustGet(t, s, func(ctx context.Context, tx keyward.Tx) ([]*keyward.Key, error) {
		return tx.OwnerKeys(ctx, other.ID, ada.ID)
	})
	if len(got) != 0 {
		t.Errorf("OwnerKeys(another tenant) = %d keys, want none", len(got))
	}
}

func testUpdateKey(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	k := mustKey(t, s, ada, "before", func(k *keyward.Key) {
		k.LastUsedAt = ptr(now.Add(-time.Hour))
		k.ExpiresAt = ptr(now.Add(time.Hour))
		k.Scopes = []string{"a"}
	})
	stored := withOwner(k, ada)

	changed := *stored
	changed.Name, changed.Description, changed.Role = "after", "new description", keyward.KeyRoleReadonly
	changed.Scopes = []string{"b", "c"}
	changed.Meta = json.RawMessage(`{"x":1}`)
	changed.Disabled = true
	changed.ExpiresAt = nil
	changed.RevokedAt, changed.RevokedBy, changed.RevokeReason = ptr(now.Add(time.Second)), ptr(ada.ID), ptr("done")
	changed.UpdatedAt = now.Add(time.Minute)
	// Not written by UpdateKey:
	changed.LastUsedAt = ptr(now.Add(time.Hour))
	changed.CreatedAt = now.Add(-time.Hour)
	changed.Hash = mustHash(t)
	changed.Start = "kw_XXXX"
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateKey(ctx, &changed) })

	want := changed
	want.LastUsedAt, want.CreatedAt, want.Hash, want.Start = stored.LastUsedAt, stored.CreatedAt, stored.Hash, stored.Start
	if diff := cmp.Diff(&want, mustGetKey(t, s, tn.ID, k.ID), cmpOpts); diff != "" {
		t.Errorf("after UpdateKey (-want +got):\n%s", diff)
	}

	// Back to no scopes, a set expiry, enabled (revocation stays, see below).
	changed.Scopes, changed.Meta, changed.Disabled = nil, nil, false
	changed.ExpiresAt = ptr(now.Add(2 * time.Hour))
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateKey(ctx, &changed) })
	got := mustGetKey(t, s, tn.ID, k.ID)
	if len(got.Scopes) != 0 || string(got.Meta) != "{}" || got.Disabled || got.ExpiresAt == nil ||
		!got.ExpiresAt.Equal(now.Add(2*time.Hour)) {
		t.Errorf("after second UpdateKey: scopes %v, meta %s, disabled %v, expires %v", got.Scopes, got.Meta,
			got.Disabled, got.ExpiresAt)
	}

	stranger := changed
	stranger.TenantID = other.ID
	stranger.Name = "hijacked"
	err := update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateKey(ctx, &stranger) })
	wantCode(t, "UpdateKey(another tenant)", err, keyward.ENotFound)
	if got := mustGetKey(t, s, tn.ID, k.ID); got.Name != "after" {
		t.Errorf("UpdateKey from another tenant renamed the key to %q", got.Name)
	}
	missing := changed
	missing.ID = "key_missing"
	err = update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateKey(ctx, &missing) })
	wantCode(t, "UpdateKey(missing)", err, keyward.ENotFound)
}

func testUpdateKeyNeverUnrevokes(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	k := mustKey(t, s, ada, "key")
	stale := *k // read before the revocation

	revoked := *k
	revoked.RevokedAt, revoked.RevokedBy, revoked.RevokeReason = ptr(now), ptr(ada.ID), ptr("first")
	revoked.UpdatedAt = now.Add(time.Second)
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateKey(ctx, &revoked) })

	tests := []struct {
		name   string
		change func(k *keyward.Key)
	}{
		{"stale copy without revocation", func(k *keyward.Key) {}},
		{"revocation cleared", func(k *keyward.Key) { k.RevokedAt, k.RevokedBy, k.RevokeReason = nil, nil, nil }},
		{"revoked again", func(k *keyward.Key) {
			k.RevokedAt, k.RevokedBy, k.RevokeReason = ptr(now.Add(time.Hour)), ptr("usr_other"), ptr("second")
		}},
	}
	for _, tt := range tests {
		u := stale
		u.Name = "renamed " + tt.name
		u.UpdatedAt = now.Add(time.Minute)
		tt.change(&u)
		mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateKey(ctx, &u) })
		got := mustGetKey(t, s, tn.ID, k.ID)
		if got.Name != u.Name {
			t.Errorf("%s: name %q, want %q: the other fields are still written", tt.name, got.Name, u.Name)
		}
		if diff := cmp.Diff([]any{ptr(now), ptr(ada.ID), ptr("first")},
			[]any{got.RevokedAt, got.RevokedBy, got.RevokeReason}); diff != "" {
			t.Errorf("%s: revocation changed (-want +got):\n%s", tt.name, diff)
		}
		if got.Status(now) != keyward.StatusRevoked {
			t.Errorf("%s: status %s, want revoked", tt.name, got.Status(now))
		}
	}
}

func testDeleteKey(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	k := mustKey(t, s, ada, "doomed", func(k *keyward.Key) { k.RevokedAt = ptr(now) })
	kept := mustKey(t, s, ada, "kept")

	err := update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteKey(ctx, other.ID, k.ID) })
	wantCode(t, "DeleteKey(another tenant)", err, keyward.ENotFound)
	mustGetKey(t, s, tn.ID, k.ID)

	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteKey(ctx, tn.ID, k.ID) })
	_, err = getKey(s, tn.ID, k.ID)
	wantCode(t, "KeyByID(deleted)", err, keyward.ENotFound)
	_, err = get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Key, error) { return tx.KeyByHash(ctx, k.Hash) })
	wantCode(t, "KeyByHash(deleted)", err, keyward.ENotFound)
	err = update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteKey(ctx, tn.ID, k.ID) })
	wantCode(t, "DeleteKey(deleted)", err, keyward.ENotFound)
	mustGetKey(t, s, tn.ID, kept.ID)
}

func testCountLiveKeys(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	bob := mustUser(t, s, tn.ID, "Bob", "bob@example.com", keyward.KindUser)
	mustKey(t, s, ada, "active")
	mustKey(t, s, ada, "inactive", func(k *keyward.Key) { k.Disabled = true })
	mustKey(t, s, ada, "expires later", func(k *keyward.Key) { k.ExpiresAt = ptr(now.Add(time.Microsecond)) })
	mustKey(t, s, ada, "expires now", func(k *keyward.Key) { k.ExpiresAt = ptr(now) })
	mustKey(t, s, ada, "expired", func(k *keyward.Key) { k.ExpiresAt = ptr(now.Add(-time.Hour)) })
	mustKey(t, s, ada, "revoked", func(k *keyward.Key) { k.RevokedAt = ptr(now.Add(-time.Hour)) })
	mustKey(t, s, ada, "revoked inactive", func(k *keyward.Key) { k.RevokedAt, k.Disabled = ptr(now), true })
	mustKey(t, s, bob, "bob's")

	tests := []struct {
		tenant, owner string
		at            time.Time
		want          int
	}{
		{tn.ID, ada.ID, now, 3},
		{tn.ID, ada.ID, now.Add(-2 * time.Hour), 5},
		{tn.ID, ada.ID, now.Add(time.Hour), 2},
		{tn.ID, bob.ID, now, 1},
		{other.ID, ada.ID, now, 0},
		{tn.ID, "usr_missing", now, 0},
	}
	for _, tt := range tests {
		got := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (int, error) {
			return tx.CountLiveKeys(ctx, tt.tenant, tt.owner, tt.at)
		})
		if got != tt.want {
			t.Errorf("CountLiveKeys(%s, %s, %v) = %d, want %d", tt.tenant, tt.owner, tt.at, got, tt.want)
		}
	}
}

func testRevokeKeys(t *testing.T, s keyward.Store, cfg Config) {
	type fixture struct {
		tn                    *keyward.Tenant
		ada, svc              *keyward.User
		live, system, skipped []*keyward.Key
		otherTenantKey        *keyward.Key
		otherTenant           *keyward.Tenant
	}
	setup := func(t *testing.T) fixture {
		var f fixture
		f.tn = mustTenant(t, s, "Acme "+t.Name())
		f.otherTenant = mustTenant(t, s, "Other "+t.Name())
		f.ada = mustUser(t, s, f.tn.ID, "Ada", "ada@example.com", keyward.KindUser, keyward.RoleTenantAdmin)
		f.svc = mustUser(t, s, f.tn.ID, "Billing", "billing@svc.example", keyward.KindSystem)
		stranger := mustUser(t, s, f.otherTenant.ID, "S", "s@example.com", keyward.KindSystem)
		// Keys last changed an hour ago, so that the revocation visibly moves updated_at.
		mustKey := func(tb testing.TB, s keyward.Store, owner *keyward.User, name string, opts ...func(*keyward.Key)) *keyward.Key {
			tb.Helper()
			earlier := func(k *keyward.Key) { k.CreatedAt, k.UpdatedAt = now.Add(-time.Hour), now.Add(-time.Hour) }
			return mustKey(tb, s, owner, name, append([]func(*keyward.Key){earlier}, opts...)...)
		}
		f.live = []*keyward.Key{
			withOwner(mustKey(t, s, f.ada, "ada active"), f.ada),
			withOwner(mustKey(t, s, f.ada, "ada inactive", func(k *keyward.Key) { k.Disabled = true }), f.ada),
			withOwner(mustKey(t, s, f.ada, "ada expiring", func(k *keyward.Key) { k.ExpiresAt = ptr(now.Add(time.Microsecond)) }), f.ada),
		}
		f.system = []*keyward.Key{
			withOwner(mustKey(t, s, f.svc, "svc active"), f.svc),
			withOwner(mustKey(t, s, f.svc, "svc inactive", func(k *keyward.Key) { k.Disabled = true }), f.svc),
		}
		f.skipped = []*keyward.Key{
			withOwner(mustKey(t, s, f.ada, "ada revoked", func(k *keyward.Key) {
				k.RevokedAt, k.RevokedBy, k.RevokeReason = ptr(now.Add(-time.Hour)), ptr("usr_x"), ptr("old")
			}), f.ada),
			withOwner(mustKey(t, s, f.ada, "ada expired now", func(k *keyward.Key) { k.ExpiresAt = ptr(now) }), f.ada),
			withOwner(mustKey(t, s, f.svc, "svc expired", func(k *keyward.Key) { k.ExpiresAt = ptr(now.Add(-time.Hour)) }), f.svc),
			withOwner(mustKey(t, s, f.svc, "svc revoked", func(k *keyward.Key) { k.RevokedAt = ptr(now.Add(-time.Hour)) }), f.svc),
		}
		f.otherTenantKey = withOwner(mustKey(t, s, stranger, "elsewhere"), stranger)
		return f
	}
	revoked := func(k *keyward.Key, by string, reason *string) *keyward.Key {
		c := *k
		c.RevokedAt, c.RevokedBy, c.RevokeReason, c.UpdatedAt = ptr(now), ptr(by), reason, now
		return &c
	}

	tests := []struct {
		name    string
		typ     string
		reason  *string
		revoke  func(f fixture) []*keyward.Key // what gets revoked
		untouch func(f fixture) []*keyward.Key
	}{
		{"system", keyward.KindSystem, ptr("rotation"),
			func(f fixture) []*keyward.Key { return f.system },
			func(f fixture) []*keyward.Key { return append(slices.Clone(f.live), f.skipped...) }},
		{"user", keyward.KindUser, nil,
			func(f fixture) []*keyward.Key { return f.live },
			func(f fixture) []*keyward.Key { return append(slices.Clone(f.system), f.skipped...) }},
		{"all", "", ptr("incident"),
			func(f fixture) []*keyward.Key { return append(slices.Clone(f.live), f.system...) },
			func(f fixture) []*keyward.Key { return f.skipped }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			// The event template: what each revoked key's event holds but
			// its ID and target. Its own ID and target must be ignored.
			tmpl := &keyward.Event{ID: "evt_ignored", Time: now, TenantID: f.tn.ID, Action: keyward.ActionKeyRevoked,
				Actor:       keyward.Ref{Type: keyward.ActorUser, ID: f.ada.ID, Name: "Ada"},
				ActorUserID: f.ada.ID, Target: keyward.Ref{Type: keyward.TargetKey, ID: "key_ignored", Name: "ignored"},
				TargetOwnerID: "usr_ignored", IP: "192.0.2.7", UserAgent: "keyward-cli/1.0",
				Details: map[string]any{"bulk": true, "reason": "incident"}}
			var newIDs []string
			newID := func() (string, error) {
				id := mustID(t, keyward.PrefixEvent)
				newIDs = append(newIDs, id)
				return id, nil
			}
			var got []keyward.RevokedKey
			mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error {
				var err error
				newIDs = nil
				got, err = tx.RevokeKeys(ctx, keyward.RevokeSpec{TenantID: f.tn.ID, Type: tt.typ, At: now,
					By: f.ada.ID, Reason: tt.reason, Event: tmpl, NewID: newID})
				return err
			})
			var want []*keyward.Key
			var wantRevoked []keyward.RevokedKey
			var wantEvents []*keyward.Event
			for _, k := range tt.revoke(f) {
				want = append(want, revoked(k, f.ada.ID, tt.reason))
				wantRevoked = append(wantRevoked, keyward.RevokedKey{ID: k.ID, Hash: k.Hash})
				e := *tmpl
				e.Target = keyward.Ref{Type: keyward.TargetKey, ID: k.ID, Name: k.Name}
				e.TargetOwnerID = k.OwnerID
				wantEvents = append(wantEvents, &e)
			}
			slices.SortFunc(wantRevoked, func(a, b keyward.RevokedKey) int { return strings.Compare(a.ID, b.ID) })
			if diff := cmp.Diff(wantRevoked, got); diff != "" {
				t.Errorf("RevokeKeys returned (-want +got):\n%s", diff)
			}
			for _, w := range want {
				if diff := cmp.Diff(w, mustGetKey(t, s, f.tn.ID, w.ID), cmpOpts); diff != "" {
					t.Errorf("stored %s (-want +got):\n%s", w.Name, diff)
				}
			}
			for _, w := range append(tt.untouch(f), f.otherTenantKey) {
				if diff := cmp.Diff(w, mustGetKey(t, s, w.TenantID, w.ID), cmpOpts); diff != "" {
					t.Errorf("%s changed (-want +got):\n%s", w.Name, diff)
				}
			}
			// One event a revoked key, each with an ID of its own from NewID.
			page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) {
				return tx.ListEvents(ctx, keyward.EventFilter{TenantID: f.tn.ID, PageSize: 50})
			})
			if page.Total != len(want) {
				t.Errorf("the events list's total is %d, want %d", page.Total, len(want))
			}
			gotIDs := map[string]bool{}
			for _, e := range page.Events {
				if gotIDs[e.ID] {
					t.Errorf("two events have the ID %s", e.ID)
				}
				gotIDs[e.ID] = true
			}
			switch {
			case !cfg.OwnRevocationEventIDs && len(newIDs) != len(want):
				t.Errorf("NewID called %d times, want %d", len(newIDs), len(want))
			case cfg.OwnRevocationEventIDs:
				for id := range gotIDs {
					if !wellFormedID(id, keyward.PrefixEvent) {
						t.Errorf("event ID %q is not evt_ and 22 base62 characters", id)
					}
				}
			}
			for _, id := range newIDs {
				if !gotIDs[id] {
					t.Errorf("no event has the ID %s that NewID gave", id)
				}
			}
			byTarget := cmpopts.SortSlices(func(a, b *keyward.Event) bool { return a.Target.ID < b.Target.ID })
			if diff := cmp.Diff(wantEvents, page.Events, byTarget, cmpopts.IgnoreFields(keyward.Event{}, "ID")); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}

			// A second call finds nothing left to revoke, and writes nothing.
			var again []keyward.RevokedKey
			mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error {
				var err error
				again, err = tx.RevokeKeys(ctx, keyward.RevokeSpec{TenantID: f.tn.ID, Type: tt.typ,
					At: now.Add(time.Second), By: f.ada.ID, Event: tmpl, NewID: newID})
				return err
			})
			if len(again) != 0 {
				t.Errorf("second RevokeKeys revoked %d keys, want none", len(again))
			}
			after := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) {
				return tx.ListEvents(ctx, keyward.EventFilter{TenantID: f.tn.ID, PageSize: 50})
			})
			if after.Total != page.Total {
				t.Errorf("second RevokeKeys: %d events, was %d", after.Total, page.Total)
			}
		})
	}

	// Without an event, nothing is written to the trail; a failing event
	// (a repeated ID) undoes the revocation with the transaction.
	t.Run("no event", func(t *testing.T) {
		f := setup(t)
		mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error {
			_, err := tx.RevokeKeys(ctx, keyward.RevokeSpec{TenantID: f.tn.ID, At: now, By: f.ada.ID})
			return err
		})
		page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) {
			return tx.ListEvents(ctx, keyward.EventFilter{TenantID: f.tn.ID, PageSize: 50})
		})
		if page.Total != 0 {
			t.Errorf("%d events, want none", page.Total)
		}
	})
	if cfg.OwnRevocationEventIDs {
		return // the cases below are about NewID's IDs
	}
	t.Run("repeated event id", func(t *testing.T) {
		f := setup(t)
		err := update(s, func(ctx context.Context, tx keyward.Tx) error {
			_, err := tx.RevokeKeys(ctx, keyward.RevokeSpec{TenantID: f.tn.ID, At: now, By: f.ada.ID,
				Event: &keyward.Event{Time: now, TenantID: f.tn.ID, Action: keyward.ActionKeyRevoked, Target: keyward.Ref{Type: keyward.TargetKey}},
				NewID: func() (string, error) { return "evt_same", nil }})
			return err
		})
		wantCode(t, "RevokeKeys(one event ID for every key)", err, keyward.EConflict)
		for _, k := range append(slices.Clone(f.live), f.system...) {
			if diff := cmp.Diff(k, mustGetKey(t, s, f.tn.ID, k.ID), cmpOpts); diff != "" {
				t.Errorf("%s changed by a failed revocation (-want +got):\n%s", k.Name, diff)
			}
		}
	})
	t.Run("failing NewID", func(t *testing.T) {
		f := setup(t)
		broken := errors.New("no randomness")
		calls := 0
		err := update(s, func(ctx context.Context, tx keyward.Tx) error {
			_, err := tx.RevokeKeys(ctx, keyward.RevokeSpec{TenantID: f.tn.ID, At: now, By: f.ada.ID,
				Event: &keyward.Event{Time: now, TenantID: f.tn.ID, Action: keyward.ActionKeyRevoked, Target: keyward.Ref{Type: keyward.TargetKey}},
				NewID: func() (string, error) {
					if calls++; calls == 3 {
						return "", broken
					}
					return mustID(t, keyward.PrefixEvent), nil
				}})
			return err
		})
		if err == nil {
			t.Fatal("RevokeKeys succeeded though NewID failed")
		}
		for _, k := range append(slices.Clone(f.live), f.system...) {
			if diff := cmp.Diff(k, mustGetKey(t, s, f.tn.ID, k.ID), cmpOpts); diff != "" {
				t.Errorf("%s changed by a failed revocation (-want +got):\n%s", k.Name, diff)
			}
		}
		page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) {
			return tx.ListEvents(ctx, keyward.EventFilter{TenantID: f.tn.ID, PageSize: 50})
		})
		if page.Total != 0 || len(page.Events) != 0 {
			t.Errorf("a failed revocation left %d events (total %d)", len(page.Events), page.Total)
		}
	})
}

func testTouchKeys(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	never := mustKey(t, s, ada, "never used")
	used := mustKey(t, s, ada, "used", func(k *keyward.Key) { k.LastUsedAt = ptr(now) })
	revoked := mustKey(t, s, ada, "revoked", func(k *keyward.Key) { k.RevokedAt = ptr(now) })

	steps := []struct {
		name  string
		touch map[string]time.Time
		want  map[string]*time.Time // last_used_at of never, used, revoked afterwards
	}{
		{"first use", map[string]time.Time{never.ID: now.Add(time.Second)},
			map[string]*time.Time{never.ID: ptr(now.Add(time.Second)), used.ID: ptr(now), revoked.ID: nil}},
		{"forward, unknown ids ignored",
			map[string]time.Time{never.ID: now.Add(time.Minute), used.ID: now.Add(time.Microsecond),
				revoked.ID: now, "key_missing": now, "": now},
			map[string]*time.Time{never.ID: ptr(now.Add(time.Minute)), used.ID: ptr(now.Add(time.Microsecond)),
				revoked.ID: ptr(now)}},
		{"never back", map[string]time.Time{never.ID: now, used.ID: now.Add(-time.Hour)},
			map[string]*time.Time{never.ID: ptr(now.Add(time.Minute)), used.ID: ptr(now.Add(time.Microsecond)),
				revoked.ID: ptr(now)}},
		{"same time", map[string]time.Time{never.ID: now.Add(time.Minute)},
			map[string]*time.Time{never.ID: ptr(now.Add(time.Minute)), used.ID: ptr(now.Add(time.Microsecond)),
				revoked.ID: ptr(now)}},
		{"nothing", map[string]time.Time{},
			map[string]*time.Time{never.ID: ptr(now.Add(time.Minute)), used.ID: ptr(now.Add(time.Microsecond)),
				revoked.ID: ptr(now)}},
	}
	for _, step := range steps {
		mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.TouchKeys(ctx, step.touch) })
		for id, want := range step.want {
			got := mustGetKey(t, s, tn.ID, id)
			if diff := cmp.Diff(want, got.LastUsedAt); diff != "" {
				t.Errorf("%s: last_used_at of %s (-want +got):\n%s", step.name, got.Name, diff)
			}
			if !got.UpdatedAt.Equal(now) {
				t.Errorf("%s: TouchKeys moved updated_at of %s to %v", step.name, got.Name, got.UpdatedAt)
			}
		}
	}
}

func testExpiryBookkeeping(t *testing.T, s keyward.Store) {
	a := mustTenant(t, s, "A")
	b := mustTenant(t, s, "B")
	ada := mustUser(t, s, a.ID, "Ada", "ada@example.com", keyward.KindUser)
	bob := mustUser(t, s, b.ID, "Bob", "bob@example.com", keyward.KindSystem)
	expiredLong := mustKey(t, s, ada, "expired long ago", func(k *keyward.Key) { k.ExpiresAt = ptr(now.Add(-48 * time.Hour)) })
	expiredNow := mustKey(t, s, ada, "expires now", func(k *keyward.Key) { k.ExpiresAt = ptr(now) })
	expiredB := mustKey(t, s, bob, "expired in B", func(k *keyward.Key) {
		k.ExpiresAt, k.Disabled = ptr(now.Add(-time.Hour)), true
	})
	later := mustKey(t, s, ada, "expires later", func(k *keyward.Key) { k.ExpiresAt = ptr(now.Add(time.Microsecond)) })
	mustKey(t, s, ada, "never expires")
	mustKey(t, s, ada, "revoked then expired", func(k *keyward.Key) {
		k.ExpiresAt, k.RevokedAt = ptr(now.Add(-time.Hour)), ptr(now.Add(-2*time.Hour))
	})

	list := func(at time.Time, limit int) []string {
		t.Helper()
		keys := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) ([]*keyward.Key, error) {
			return tx.ExpiredUnrecorded(ctx, at, limit)
		})
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
			if k.OwnerName == "" || k.Type == "" {
				t.Errorf("ExpiredUnrecorded: key %s lacks its owner fields", k.Name)
			}
		}
		slices.Sort(ids)
		return ids
	}
	sorted := func(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }

	if diff := cmp.Diff(sorted(expiredLong.ID, expiredNow.ID, expiredB.ID), list(now, 100)); diff != "" {
		t.Errorf("ExpiredUnrecorded(now) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sorted(expiredLong.ID), list(now.Add(-2*time.Hour), 100)); diff != "" {
		t.Errorf("ExpiredUnrecorded(now-2h) (-want +got):\n%s", diff)
	}
	if got := list(now, 2); len(got) != 2 {
		t.Errorf("ExpiredUnrecorded(limit 2) = %d keys, want 2", len(got))
	}

	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error {
		return tx.MarkExpiryRecorded(ctx, []string{expiredLong.ID, expiredB.ID, "key_missing"})
	})
	if diff := cmp.Diff(sorted(expiredNow.ID), list(now, 100)); diff != "" {
		t.Errorf("ExpiredUnrecorded after MarkExpiryRecorded (-want +got):\n%s", diff)
	}
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.MarkExpiryRecorded(ctx, nil) })
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error {
		return tx.MarkExpiryRecorded(ctx, []string{expiredNow.ID})
	})
	if diff := cmp.Diff(sorted(later.ID), list(now.Add(time.Hour), 100)); diff != "" {
		t.Errorf("ExpiredUnrecorded(now+1h) (-want +got):\n%s", diff)
	}
	// Recording changes nothing else about a key.
	got := mustGetKey(t, s, a.ID, expiredLong.ID)
	if diff := cmp.Diff(withOwner(expiredLong, ada), got, cmpOpts); diff != "" {
		t.Errorf("key after MarkExpiryRecorded (-want +got):\n%s", diff)
	}
}

// testKeyForVerify checks the hot path's lookup: the key by its digest, of
// any tenant, with its tenant's current settings, the same as KeyByHash and
// TenantByID give; an unknown digest is ENotFound.
func testKeyForVerify(t *testing.T, s keyward.Store) {
	ctx := context.Background()
	tn, other := mustTenant(t, s, "Acme"), mustTenant(t, s, "Other")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@acme.example", keyward.KindUser)
	zed := mustUser(t, s, other.ID, "Zed", "zed@other.example", keyward.KindSystem)
	for _, owner := range []*keyward.User{ada, zed} {
		k := mustKey(t, s, owner, "k of "+owner.Name, func(k *keyward.Key) {
			k.Scopes, k.RateLimit = []string{"a", "b"}, &keyward.RateLimit{Limit: 5, WindowSeconds: 60}
		})
		got, set, err := s.KeyForVerify(ctx, k.Hash)
		if err != nil {
			t.Fatalf("KeyForVerify: %v", err)
		}
		want := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Key, error) { return tx.KeyByHash(ctx, k.Hash) })
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("KeyForVerify key (-KeyByHash +got):\n%s", diff)
		}
		tenant := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Tenant, error) {
			return tx.TenantByID(ctx, owner.TenantID)
		})
		if diff := cmp.Diff(tenant.Settings, *set); diff != "" {
			t.Errorf("KeyForVerify settings (-TenantByID +got):\n%s", diff)
		}
	}
	// Settings as they are now, not as they were.
	changed := keyward.DefaultSettings()
	changed.APIKeysEnabled, changed.MaxExpirationDays, changed.KeyPrefix = true, ptr(30), "acme"
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateSettings(ctx, tn.ID, changed) })
	k := mustKey(t, s, ada, "after")
	if _, set, err := s.KeyForVerify(ctx, k.Hash); err != nil || !cmp.Equal(*set, changed) {
		t.Errorf("KeyForVerify after a settings change: %+v, %v; want %+v", set, err, changed)
	}
	_, _, err := s.KeyForVerify(ctx, mustHash(t))
	wantCode(t, "KeyForVerify(unknown)", err, keyward.ENotFound)
}
