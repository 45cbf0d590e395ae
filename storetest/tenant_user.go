package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward"
)

func testTenants(t *testing.T, s keyward.Store) {
	full := newTenant(t, "Acme Corp")
	full.Settings = keyward.Settings{APIKeysEnabled: true, MaxExpirationDays: ptr(90),
		MaxKeysPerUser: 7, MaxKeysPerServiceUser: 1000, ExpiryNoticeDays: 0, KeyPrefix: "acme2"}
	plain := newTenant(t, "Plain")
	for _, tn := range []*keyward.Tenant{full, plain} {
		mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateTenant(ctx, tn) })
	}

	for _, want := range []*keyward.Tenant{full, plain} {
		byID := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Tenant, error) {
			return tx.TenantByID(ctx, want.ID)
		})
		if diff := cmp.Diff(want, byID); diff != "" {
			t.Errorf("TenantByID(%s) (-want +got):\n%s", want.Name, diff)
		}
		checkUTC(t, "TenantByID", &byID.CreatedAt)
		byName := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Tenant, error) {
			return tx.TenantByName(ctx, want.Name)
		})
		if diff := cmp.Diff(want, byName); diff != "" {
			t.Errorf("TenantByName(%s) (-want +got):\n%s", want.Name, diff)
		}
	}

	// Names compare case-insensitively, for lookup and for uniqueness.
	got, err := get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Tenant, error) {
		return tx.TenantByName(ctx, "ACME CORP")
	})
	if err != nil || got.ID != full.ID {
		t.Errorf("TenantByName(ACME CORP) = %v, %v; want tenant %s", got, err, full.ID)
	}
	for _, name := range []string{"Acme Corp", "acme corp"} {
		err := update(s, func(ctx context.Context, tx keyward.Tx) error {
			return tx.CreateTenant(ctx, newTenant(t, name))
		})
		wantCode(t, "CreateTenant(duplicate "+name+")", err, keyward.EConflict)
	}

	_, err = get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Tenant, error) {
		return tx.TenantByID(ctx, "ten_missing")
	})
	wantCode(t, "TenantByID(missing)", err, keyward.ENotFound)
	_, err = get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Tenant, error) {
		return tx.TenantByName(ctx, "Nobody")
	})
	wantCode(t, "TenantByName(missing)", err, keyward.ENotFound)
}

func testUpdateSettings(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	tests := []keyward.Settings{
		{APIKeysEnabled: true, MaxExpirationDays: ptr(30), MaxKeysPerUser: 3, MaxKeysPerServiceUser: 4,
			ExpiryNoticeDays: 365, KeyPrefix: "ab"},
		// nil clears max_expiration_days.
		{APIKeysEnabled: false, MaxExpirationDays: nil, MaxKeysPerUser: 1000, MaxKeysPerServiceUser: 1,
			ExpiryNoticeDays: 0, KeyPrefix: "abcdefghijk1"},
	}
	for _, settings := range tests {
		mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error {
			return tx.UpdateSettings(ctx, tn.ID, settings)
		})
		got := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Tenant, error) {
			return tx.TenantByID(ctx, tn.ID)
		})
		want := *tn
		want.Settings = settings
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("after UpdateSettings (-want +got):\n%s", diff)
		}
	}
	gotOther := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Tenant, error) {
		return tx.TenantByID(ctx, other.ID)
	})
	if diff := cmp.Diff(other, gotOther); diff != "" {
		t.Errorf("another tenant changed (-want +got):\n%s", diff)
	}
	err := update(s, func(ctx context.Context, tx keyward.Tx) error {
		return tx.UpdateSettings(ctx, "ten_missing", keyward.DefaultSettings())
	})
	wantCode(t, "UpdateSettings(missing)", err, keyward.ENotFound)
}

func testUsers(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	admin := newUser(t, tn.ID, "Ada Admin", "Ada@Example.com", keyward.KindUser,
		keyward.RoleTenantAdmin, keyward.RoleDeveloper)
	admin.PasswordHash = "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA"
	admin.CreatedAt, admin.UpdatedAt = now.Add(-time.Hour), now.Add(-time.Microsecond)
	svc := newUser(t, tn.ID, "Billing", "billing@svc.example", keyward.KindSystem)
	svc.Licensed = false
	svc.Roles = nil
	wantAdmin, wantSvc := *admin, *svc
	wantSvc.Roles = []string{} // no roles read back as an empty list
	for _, u := range []*keyward.User{admin, svc} {
		mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateUser(ctx, u) })
	}

	for _, want := range []*keyward.User{&wantAdmin, &wantSvc} {
		got, err := getUser(s, tn.ID, want.ID)
		if err != nil {
			t.Fatalf("UserByID(%s): %v", want.Name, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UserByID(%s) (-want +got):\n%s", want.Name, diff)
		}
		if got.Roles == nil {
			t.Errorf("UserByID(%s).Roles is nil, want an empty list", want.Name)
		}
		checkUTC(t, "UserByID", &got.CreatedAt, &got.UpdatedAt)
	}

	_, err := getUser(s, other.ID, admin.ID)
	wantCode(t, "UserByID(another tenant's user)", err, keyward.ENotFound)
	_, err = getUser(s, tn.ID, "usr_missing")
	wantCode(t, "UserByID(missing)", err, keyward.ENotFound)

	// Emails are unique per tenant, case-insensitively; other tenants may reuse them.
	for _, email := range []string{"Ada@Example.com", "ada@example.com", "ADA@EXAMPLE.COM"} {
		err := update(s, func(ctx context.Context, tx keyward.Tx) error {
			return tx.CreateUser(ctx, newUser(t, tn.ID, "Copy", email, keyward.KindUser))
		})
		wantCode(t, "CreateUser(duplicate "+email+")", err, keyward.EConflict)
	}
	mustUser(t, s, other.ID, "Ada Elsewhere", "ada@example.com", keyward.KindUser)
}

func testUsersByEmail(t *testing.T, s keyward.Store) {
	a := mustTenant(t, s, "A")
	b := mustTenant(t, s, "B")
	ua := mustUser(t, s, a.ID, "Ada", "ada@example.com", keyward.KindUser)
	ub := mustUser(t, s, b.ID, "Ada B", "ADA@example.COM", keyward.KindUser)
	bob := mustUser(t, s, a.ID, "Bob", "bob@example.com", keyward.KindUser)

	tests := []struct {
		email string
		want  []string
	}{
		{"ada@example.com", []string{ua.ID, ub.ID}},
		{"Ada@Example.Com", []string{ua.ID, ub.ID}},
		{"bob@example.com", []string{bob.ID}},
		{"nobody@example.com", nil},
		{"ada@example", nil}, // not a substring match
	}
	for _, tt := range tests {
		users := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) ([]*keyward.User, error) {
			return tx.UsersByEmail(ctx, tt.email)
		})
		var got []string
		for _, u := range users {
			got = append(got, u.ID)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tt.want))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UsersByEmail(%q) (-want +got):\n%s", tt.email, diff)
		}
	}
	users := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) ([]*keyward.User, error) {
		return tx.UsersByEmail(ctx, "ada@example.com")
	})
	for _, u := range users {
		want := ua
		if u.ID == ub.ID {
			want = ub
		}
		if diff := cmp.Diff(want, u, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("UsersByEmail user (-want +got):\n%s", diff)
		}
	}
}

func testUpdateUser(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	u := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser, keyward.RoleDeveloper)

	changed := *u
	changed.Name = "Ada Lovelace"
	changed.Roles = []string{keyward.RoleTenantAdmin}
	changed.Licensed = false
	changed.PasswordHash = "$argon2id$new"
	changed.UpdatedAt = now.Add(time.Minute)
	// Not written by UpdateUser:
	changed.Email = "changed@example.com"
	changed.Kind = keyward.KindSystem
	changed.CreatedAt = now.Add(time.Hour)
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateUser(ctx, &changed) })

	want := changed
	want.Email, want.Kind, want.CreatedAt = u.Email, u.Kind, u.CreatedAt
	got, err := getUser(s, tn.ID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("after UpdateUser (-want +got):\n%s", diff)
	}

	// Roles may be emptied.
	changed.Roles = nil
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateUser(ctx, &changed) })
	if got, _ := getUser(s, tn.ID, u.ID); got == nil || len(got.Roles) != 0 {
		t.Errorf("after UpdateUser with no roles: %+v, want no roles", got)
	}

	stranger := changed
	stranger.TenantID = other.ID
	stranger.Name = "Hijacked"
	err = update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateUser(ctx, &stranger) })
	wantCode(t, "UpdateUser(another tenant)", err, keyward.ENotFound)
	if got, _ := getUser(s, tn.ID, u.ID); got == nil || got.Name != "Ada Lovelace" {
		t.Errorf("UpdateUser from another tenant changed the user: %+v", got)
	}
	missing := *u
	missing.ID = "usr_missing"
	err = update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateUser(ctx, &missing) })
	wantCode(t, "UpdateUser(missing)", err, keyward.ENotFound)
}

func testDeleteUser(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	u := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	keep := mustUser(t, s, tn.ID, "Bob", "bob@example.com", keyward.KindUser)
	k1 := mustKey(t, s, u, "one")
	k2 := mustKey(t, s, u, "two", func(k *keyward.Key) { k.RevokedAt = ptr(now) })
	kept := mustKey(t, s, keep, "kept")
	ses := mustSession(t, s, u)
	keptSes := mustSession(t, s, keep)
	ev := &keyward.Event{ID: mustID(t, keyward.PrefixEvent), Time: now, TenantID: tn.ID,
		Action: keyward.ActionKeyCreated, Actor: keyward.Ref{Type: keyward.ActorUser, ID: u.ID},
		Target: keyward.Ref{Type: keyward.TargetKey, ID: k1.ID}, ActorUserID: u.ID, TargetOwnerID: u.ID}
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.InsertEvents(ctx, ev) })

	err := update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteUser(ctx, other.ID, u.ID) })
	wantCode(t, "DeleteUser(another tenant)", err, keyward.ENotFound)
	if _, err := getUser(s, tn.ID, u.ID); err != nil {
		t.Fatalf("DeleteUser from another tenant deleted the user: %v", err)
	}

	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteUser(ctx, tn.ID, u.ID) })

	_, err = getUser(s, tn.ID, u.ID)
	wantCode(t, "UserByID(deleted)", err, keyward.ENotFound)
	for _, k := range []*keyward.Key{k1, k2} {
		_, err := getKey(s, tn.ID, k.ID)
		wantCode(t, "KeyByID(key of deleted user)", err, keyward.ENotFound)
		_, err = get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Key, error) {
			return tx.KeyByHash(ctx, k.Hash)
		})
		wantCode(t, "KeyByHash(key of deleted user)", err, keyward.ENotFound)
	}
	_, err = get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Session, error) {
		return tx.SessionByHash(ctx, ses.Hash)
	})
	wantCode(t, "SessionByHash(session of deleted user)", err, keyward.ENotFound)
	owned := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) ([]*keyward.Key, error) {
		return tx.OwnerKeys(ctx, tn.ID, u.ID)
	})
	if len(owned) != 0 {
		t.Errorf("OwnerKeys(deleted user) = %d keys, want none", len(owned))
	}

	// Other users keep their keys and sessions, and the audit trail stays.
	mustGetKey(t, s, tn.ID, kept.ID)
	mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Session, error) {
		return tx.SessionByHash(ctx, keptSes.Hash)
	})
	events := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) {
		return tx.ListEvents(ctx, keyward.EventFilter{TenantID: tn.ID, PageSize: 10})
	})
	if events.Total != 1 || len(events.Events) != 1 || events.Events[0].ID != ev.ID {
		t.Errorf("events after DeleteUser: %+v, want the one event", events)
	}

	err = update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteUser(ctx, tn.ID, u.ID) })
	wantCode(t, "DeleteUser(deleted)", err, keyward.ENotFound)
	// The email is free again.
	mustUser(t, s, tn.ID, "Ada again", "ada@example.com", keyward.KindUser)
}

func testCountAdmins(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	count := func() int {
		t.Helper()
		return mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (int, error) {
			return tx.CountAdmins(ctx, tn.ID)
		})
	}
	if n := count(); n != 0 {
		t.Errorf("CountAdmins(empty tenant) = %d, want 0", n)
	}
	a := mustUser(t, s, tn.ID, "A", "a@example.com", keyward.KindUser, keyward.RoleTenantAdmin)
	mustUser(t, s, tn.ID, "B", "b@example.com", keyward.KindUser, keyward.RoleDeveloper, keyward.RoleTenantAdmin)
	mustUser(t, s, tn.ID, "C", "c@example.com", keyward.KindUser, keyward.RoleDeveloper)
	mustUser(t, s, tn.ID, "D", "d@example.com", keyward.KindUser)
	mustUser(t, s, other.ID, "E", "e@example.com", keyward.KindUser, keyward.RoleTenantAdmin)
	if n := count(); n != 2 {
		t.Errorf("CountAdmins = %d, want 2", n)
	}
	a.Roles = []string{keyward.RoleDeveloper}
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateUser(ctx, a) })
	if n := count(); n != 1 {
		t.Errorf("CountAdmins after demotion = %d, want 1", n)
	}
}

func testLockUser(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	u := mustUser(t, s, tn.ID, "A", "a@example.com", keyward.KindUser)
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.LockUser(ctx, tn.ID, u.ID) })
	err := update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.LockUser(ctx, other.ID, u.ID) })
	wantCode(t, "LockUser(another tenant)", err, keyward.ENotFound)
	err = update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.LockUser(ctx, tn.ID, "usr_missing") })
	wantCode(t, "LockUser(missing)", err, keyward.ENotFound)
}

func testSessions(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	u := mustUser(t, s, tn.ID, "A", "a@example.com", keyward.KindUser)
	stranger := mustUser(t, s, other.ID, "S", "s@example.com", keyward.KindUser)
	ses := &keyward.Session{ID: mustID(t, keyward.PrefixSession), TenantID: tn.ID, UserID: u.ID,
		Hash: mustHash(t), CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(12*time.Hour + time.Microsecond)}
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateSession(ctx, ses) })

	got := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Session, error) {
		return tx.SessionByHash(ctx, ses.Hash)
	})
	if diff := cmp.Diff(ses, got); diff != "" {
		t.Errorf("SessionByHash (-want +got):\n%s", diff)
	}
	checkUTC(t, "SessionByHash", &got.CreatedAt, &got.ExpiresAt)

	// An expired session is still found: judging it is the caller's business.
	old := &keyward.Session{ID: mustID(t, keyward.PrefixSession), TenantID: tn.ID, UserID: u.ID,
		Hash: mustHash(t), CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-time.Hour)}
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateSession(ctx, old) })
	mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Session, error) {
		return tx.SessionByHash(ctx, old.Hash)
	})

	dup := *ses
	dup.ID = mustID(t, keyward.PrefixSession)
	err := update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateSession(ctx, &dup) })
	wantCode(t, "CreateSession(duplicate hash)", err, keyward.EConflict)

	// A session belongs to a user of its own tenant.
	cross := &keyward.Session{ID: mustID(t, keyward.PrefixSession), TenantID: tn.ID, UserID: stranger.ID,
		Hash: mustHash(t), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	err = update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateSession(ctx, cross) })
	wantCode(t, "CreateSession(user of another tenant)", err, keyward.ENotFound)

	_, err = get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Session, error) {
		return tx.SessionByHash(ctx, mustHash(t))
	})
	wantCode(t, "SessionByHash(unknown)", err, keyward.ENotFound)

	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteSession(ctx, ses.ID) })
	_, err = get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Session, error) {
		return tx.SessionByHash(ctx, ses.Hash)
	})
	wantCode(t, "SessionByHash(deleted)", err, keyward.ENotFound)
	err = update(s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteSession(ctx, ses.ID) })
	wantCode(t, "DeleteSession(deleted)", err, keyward.ENotFound)
	mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Session, error) {
		return tx.SessionByHash(ctx, old.Hash)
	})
}
