package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward"
)

// testKeyRateLimit: a key's rate limit, none or set, comes back from every
// read, is written by UpdateKey (nil clears it) and survives a revocation.
func testKeyRateLimit(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser, keyward.RoleTenantAdmin)
	limit := func(n, w int) *keyward.RateLimit { return &keyward.RateLimit{Limit: n, WindowSeconds: w} }
	unlimited := withOwner(mustKey(t, s, ada, "unlimited"), ada)
	limited := withOwner(mustKey(t, s, ada, "limited", func(k *keyward.Key) { k.RateLimit = limit(100, 60) }), ada)
	extremes := withOwner(mustKey(t, s, ada, "extremes", func(k *keyward.Key) { k.RateLimit = limit(1_000_000_000, 86400) }), ada)
	keys := []*keyward.Key{unlimited, limited, extremes}

	// check reads each key every way and compares it whole.
	check := func(step string, want ...*keyward.Key) {
		t.Helper()
		byID := cmpopts.SortSlices(func(a, b *keyward.Key) bool { return a.ID < b.ID })
		for _, w := range want {
			if diff := cmp.Diff(w, mustGetKey(t, s, tn.ID, w.ID), cmpOpts); diff != "" {
				t.Errorf("%s: KeyByID(%s) (-want +got):\n%s", step, w.Name, diff)
			}
			byHash := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.Key, error) {
				return tx.KeyByHash(ctx, w.Hash)
			})
			if diff := cmp.Diff(w, byHash, cmpOpts); diff != "" {
				t.Errorf("%s: KeyByHash(%s) (-want +got):\n%s", step, w.Name, diff)
			}
		}
		page := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) {
			return tx.ListKeys(ctx, keyward.KeyFilter{TenantID: tn.ID, Sort: "name", PageSize: 10, Now: now})
		})
		if diff := cmp.Diff(want, page.Keys, cmpOpts, byID); diff != "" {
			t.Errorf("%s: ListKeys (-want +got):\n%s", step, diff)
		}
		owned := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) ([]*keyward.Key, error) {
			return tx.OwnerKeys(ctx, tn.ID, ada.ID)
		})
		if diff := cmp.Diff(want, owned, cmpOpts, byID); diff != "" {
			t.Errorf("%s: OwnerKeys (-want +got):\n%s", step, diff)
		}
	}
	check("created", keys...)
	if unlimited.RateLimit != nil || limited.RateLimit == nil {
		t.Fatalf("fixture: unlimited %v, limited %v", unlimited.RateLimit, limited.RateLimit)
	}

	// Set on a key without one, changed, cleared.
	for _, step := range []struct {
		name string
		key  *keyward.Key
		to   *keyward.RateLimit
	}{
		{"set", unlimited, limit(5, 1)},
		{"changed", limited, limit(7, 3600)},
		{"cleared", extremes, nil},
	} {
		step.key.RateLimit = step.to
		step.key.UpdatedAt = step.key.UpdatedAt.Add(time.Second)
		k := *step.key
		mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateKey(ctx, &k) })
		check(step.name, keys...)
	}
	// UpdateKey writes the limit whatever it is given: a stale copy without
	// one clears it too.
	unlimited.RateLimit = nil
	stale := *unlimited
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.UpdateKey(ctx, &stale) })
	check("cleared again", keys...)

	// A revocation keeps the limit.
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error {
		_, err := tx.RevokeKeys(ctx, keyward.RevokeSpec{TenantID: tn.ID, At: now.Add(time.Hour), By: ada.ID})
		return err
	})
	for _, k := range keys {
		k.RevokedAt, k.RevokedBy, k.UpdatedAt = ptr(now.Add(time.Hour)), ptr(ada.ID), now.Add(time.Hour)
	}
	check("revoked", keys...)
}

// readUsage reads one key's counts in [from, to).
func readUsage(tb testing.TB, s keyward.Store, tenantID, keyID string, from, to time.Time) []keyward.UsageCount {
	tb.Helper()
	return mustGet(tb, s, func(ctx context.Context, tx keyward.Tx) ([]keyward.UsageCount, error) {
		return tx.KeyUsage(ctx, tenantID, keyID, from, to)
	})
}

func addUsage(tb testing.TB, s keyward.Store, counts ...keyward.UsageCount) {
	tb.Helper()
	mustUpdate(tb, s, func(ctx context.Context, tx keyward.Tx) error { return tx.AddUsage(ctx, counts) })
}

// byHourThenCode orders counts of one hour, whose order a store may choose.
var byHourThenCode = cmpopts.SortSlices(func(a, b keyward.UsageCount) bool {
	if !a.Hour.Equal(b.Hour) {
		return a.Hour.Before(b.Hour)
	}
	return a.Code < b.Code
})

// wantOldestFirst fails unless the hours never go back.
func wantOldestFirst(tb testing.TB, what string, got []keyward.UsageCount) {
	tb.Helper()
	for i := 1; i < len(got); i++ {
		if got[i].Hour.Before(got[i-1].Hour) {
			tb.Errorf("%s: %v listed after %v, want oldest first", what, got[i].Hour, got[i-1].Hour)
		}
	}
	for i := range got {
		checkUTC(tb, what, &got[i].Hour)
	}
}

func testAddUsage(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	k := mustKey(t, s, ada, "counted")
	gone := mustKey(t, s, ada, "deleted")
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteKey(ctx, tn.ID, gone.ID) })
	h := now.Truncate(time.Hour)
	day := func(id string) []keyward.UsageCount {
		t.Helper()
		return readUsage(t, s, tn.ID, id, h.Add(-24*time.Hour), h.Add(24*time.Hour))
	}
	c := func(hour time.Time, code string, n int64) keyward.UsageCount {
		return keyward.UsageCount{KeyID: k.ID, Hour: hour, Code: code, Count: n}
	}

	if got := day(k.ID); len(got) != 0 {
		t.Errorf("an unused key has counts %v", got)
	}
	addUsage(t, s) // nothing to add
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.AddUsage(ctx, nil) })

	addUsage(t, s, c(h, keyward.CodeValid, 3), c(h, keyward.CodeRateLimited, 1), c(h.Add(time.Hour), keyward.CodeValid, 2))
	want := []keyward.UsageCount{c(h, keyward.CodeRateLimited, 1), c(h, keyward.CodeValid, 3), c(h.Add(time.Hour), keyward.CodeValid, 2)}
	got := day(k.ID)
	if diff := cmp.Diff(want, got, byHourThenCode); diff != "" {
		t.Errorf("after the first AddUsage (-want +got):\n%s", diff)
	}
	wantOldestFirst(t, "after the first AddUsage", got)

	// The same key, hour and code again adds to the count, in one call or
	// another; the deleted key's and an unknown key's counts are dropped
	// without failing the rest.
	addUsage(t, s, c(h, keyward.CodeValid, 10), c(h, keyward.CodeValid, 5),
		keyward.UsageCount{KeyID: gone.ID, Hour: h, Code: keyward.CodeValid, Count: 7},
		keyward.UsageCount{KeyID: "key_missing", Hour: h, Code: keyward.CodeValid, Count: 9},
		c(h, keyward.CodeInactive, 1))
	want = []keyward.UsageCount{c(h, keyward.CodeInactive, 1), c(h, keyward.CodeRateLimited, 1), c(h, keyward.CodeValid, 18),
		c(h.Add(time.Hour), keyward.CodeValid, 2)}
	if diff := cmp.Diff(want, day(k.ID), byHourThenCode); diff != "" {
		t.Errorf("after adding again (-want +got):\n%s", diff)
	}
	if got := day(gone.ID); len(got) != 0 {
		t.Errorf("the deleted key has counts %v", got)
	}

	// Large counts add without overflow at 32 bits.
	addUsage(t, s, c(h.Add(2*time.Hour), keyward.CodeValid, 3_000_000_000), c(h.Add(2*time.Hour), keyward.CodeValid, 3_000_000_000))
	last := readUsage(t, s, tn.ID, k.ID, h.Add(2*time.Hour), h.Add(3*time.Hour))
	if len(last) != 1 || last[0].Count != 6_000_000_000 {
		t.Errorf("large counts: %v, want 6000000000", last)
	}
	want = append(want, c(h.Add(2*time.Hour), keyward.CodeValid, 6_000_000_000))

	// A failed transaction adds nothing.
	err := update(s, func(ctx context.Context, tx keyward.Tx) error {
		if err := tx.AddUsage(ctx, []keyward.UsageCount{c(h, keyward.CodeValid, 100)}); err != nil {
			return err
		}
		return errBoom
	})
	if err != errBoom {
		t.Fatalf("Update: %v, want the callback's error", err)
	}
	if diff := cmp.Diff(want, day(k.ID), byHourThenCode); diff != "" {
		t.Errorf("after a rolled back AddUsage (-want +got):\n%s", diff)
	}
}

func testKeyUsage(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	other := mustTenant(t, s, "Other")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	bob := mustUser(t, s, tn.ID, "Bob", "bob@example.com", keyward.KindUser)
	stranger := mustUser(t, s, other.ID, "Stranger", "s@example.com", keyward.KindSystem)
	k := mustKey(t, s, ada, "counted")
	sibling := mustKey(t, s, ada, "sibling")
	theirs := mustKey(t, s, stranger, "elsewhere")
	h := now.Truncate(time.Hour)
	c := func(id string, hour int, code string, n int64) keyward.UsageCount {
		return keyward.UsageCount{KeyID: id, Hour: h.Add(time.Duration(hour) * time.Hour), Code: code, Count: n}
	}
	// Added newest first, in several calls, to show the order is the store's.
	addUsage(t, s, c(k.ID, 5, keyward.CodeValid, 1), c(k.ID, 3, keyward.CodeExpired, 2))
	addUsage(t, s, c(k.ID, 3, keyward.CodeValid, 4), c(k.ID, 0, keyward.CodeValid, 8), c(k.ID, -1, keyward.CodeValid, 16),
		c(sibling.ID, 0, keyward.CodeValid, 32), c(theirs.ID, 0, keyward.CodeValid, 64))

	for _, tc := range []struct {
		name     string
		from, to int // hours from h
		want     []keyward.UsageCount
	}{
		{"everything", -24, 24, []keyward.UsageCount{c(k.ID, -1, keyward.CodeValid, 16), c(k.ID, 0, keyward.CodeValid, 8),
			c(k.ID, 3, keyward.CodeExpired, 2), c(k.ID, 3, keyward.CodeValid, 4), c(k.ID, 5, keyward.CodeValid, 1)}},
		{"from is included", 0, 24, []keyward.UsageCount{c(k.ID, 0, keyward.CodeValid, 8),
			c(k.ID, 3, keyward.CodeExpired, 2), c(k.ID, 3, keyward.CodeValid, 4), c(k.ID, 5, keyward.CodeValid, 1)}},
		{"to is excluded", -1, 3, []keyward.UsageCount{c(k.ID, -1, keyward.CodeValid, 16), c(k.ID, 0, keyward.CodeValid, 8)}},
		{"one hour", 3, 4, []keyward.UsageCount{c(k.ID, 3, keyward.CodeExpired, 2), c(k.ID, 3, keyward.CodeValid, 4)}},
		{"an hour without counts", 1, 2, nil},
		{"after everything", 6, 48, nil},
		{"empty range", 3, 3, nil},
	} {
		got := readUsage(t, s, tn.ID, k.ID, h.Add(time.Duration(tc.from)*time.Hour), h.Add(time.Duration(tc.to)*time.Hour))
		if diff := cmp.Diff(tc.want, got, byHourThenCode, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: KeyUsage (-want +got):\n%s", tc.name, diff)
		}
		wantOldestFirst(t, tc.name, got)
	}
	// Times between hours select by the hour's start.
	got := readUsage(t, s, tn.ID, k.ID, h.Add(-30*time.Minute), h.Add(3*time.Hour+time.Microsecond))
	if diff := cmp.Diff([]keyward.UsageCount{c(k.ID, 0, keyward.CodeValid, 8), c(k.ID, 3, keyward.CodeExpired, 2),
		c(k.ID, 3, keyward.CodeValid, 4)}, got, byHourThenCode); diff != "" {
		t.Errorf("from 30 minutes before an hour to just after another (-want +got):\n%s", diff)
	}

	// Another tenant sees nothing of this key, nor this one of its keys.
	all := func(tenantID, keyID string) []keyward.UsageCount {
		return readUsage(t, s, tenantID, keyID, h.Add(-48*time.Hour), h.Add(48*time.Hour))
	}
	if got := all(other.ID, k.ID); len(got) != 0 {
		t.Errorf("KeyUsage(another tenant, key) = %v, want nothing", got)
	}
	if got := all(tn.ID, theirs.ID); len(got) != 0 {
		t.Errorf("KeyUsage(tenant, another tenant's key) = %v, want nothing", got)
	}
	if got := all(other.ID, theirs.ID); len(got) != 1 || got[0].Count != 64 {
		t.Errorf("KeyUsage of the other tenant's own key = %v, want its 64", got)
	}
	if got := all(tn.ID, "key_missing"); len(got) != 0 {
		t.Errorf("KeyUsage(unknown key) = %v, want nothing", got)
	}

	// Deleting a key deletes its counts: a key created later with the same
	// id starts from nothing. The sibling keeps its counts.
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteKey(ctx, tn.ID, k.ID) })
	if got := all(tn.ID, k.ID); len(got) != 0 {
		t.Errorf("KeyUsage after DeleteKey = %v, want nothing", got)
	}
	mustKey(t, s, bob, "reborn", func(nk *keyward.Key) { nk.ID = k.ID })
	if got := all(tn.ID, k.ID); len(got) != 0 {
		t.Errorf("a new key with a deleted key's id has its counts %v", got)
	}
	if got := all(tn.ID, sibling.ID); len(got) != 1 || got[0].Count != 32 {
		t.Errorf("the sibling's counts after the delete: %v, want its 32", got)
	}

	// Deleting a user deletes its keys' counts too.
	mustUpdate(t, s, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteUser(ctx, tn.ID, ada.ID) })
	mustKey(t, s, bob, "sibling reborn", func(nk *keyward.Key) { nk.ID = sibling.ID })
	if got := all(tn.ID, sibling.ID); len(got) != 0 {
		t.Errorf("after DeleteUser a new key with its key's id has counts %v", got)
	}
}
