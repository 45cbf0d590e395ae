// Package storetest is the conformance suite of keyward.Store: every store
// (SQLite, PostgreSQL, ...) runs the same cases, so that the domain can rely
// on the same behaviour whatever the database.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward"
)

// now is the suite's fixed clock; every time it writes is derived from it.
var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// Run runs every case of the suite, each as a subtest against a fresh, empty
// store from open. open must fail the test if it cannot open one, and close
// the store with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) keyward.Store) {
	RunWith(t, Config{}, open)
}

// Config tells the suite what a store may do differently.
type Config struct {
	// OwnRevocationEventIDs: Tx.RevokeKeys may draw the IDs of the events
	// it writes itself rather than from RevokeSpec.NewID (see RevokeSpec);
	// the suite then checks that they are well-formed and distinct instead.
	OwnRevocationEventIDs bool
}

// RunWith is Run for a store that differs as cfg says.
func RunWith(t *testing.T, cfg Config, open func(t *testing.T) keyward.Store) {
	cases := []struct {
		name string
		test func(t *testing.T, s keyward.Store)
	}{
		{"Ping", testPing},
		{"Tenants", testTenants},
		{"UpdateSettings", testUpdateSettings},
		{"Users", testUsers},
		{"UsersByEmail", testUsersByEmail},
		{"UpdateUser", testUpdateUser},
		{"DeleteUser", testDeleteUser},
		{"CountAdmins", testCountAdmins},
		{"LockUser", testLockUser},
		{"ListUsers", testListUsers},
		{"Sessions", testSessions},
		{"Keys", testKeys},
		{"CreateKeyRefusals", testCreateKeyRefusals},
		{"OwnerKeys", testOwnerKeys},
		{"KeyForVerify", testKeyForVerify},
		{"UpdateKey", testUpdateKey},
		{"UpdateKeyNeverUnrevokes", testUpdateKeyNeverUnrevokes},
		{"DeleteKey", testDeleteKey},
		{"CountLiveKeys", testCountLiveKeys},
		{"RevokeKeys", func(t *testing.T, s keyward.Store) { testRevokeKeys(t, s, cfg) }},
		{"TouchKeys", testTouchKeys},
		{"ExpiryBookkeeping", testExpiryBookkeeping},
		{"ListKeysSort", testListKeysSort},
		{"ListKeysFilter", testListKeysFilter},
		{"ListKeysPageTokens", testListKeysPageTokens},
		{"ListKeysTotals", testListKeysTotals},
		{"ListKeysUnicodeSearch", testListKeysUnicodeSearch},
		{"Events", testEvents},
		{"ListEvents", testListEvents},
		{"UpdateRollsBack", testUpdateRollsBack},
		{"ViewIsReadOnly", testViewIsReadOnly},
		{"ViewSnapshot", testViewSnapshot},
		{"ConcurrentKeyLimit", testConcurrentKeyLimit},
		{"KeyRateLimit", testKeyRateLimit}, {"AddUsage", testAddUsage}, {"KeyUsage", testKeyUsage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.test(t, open(t))
		})
	}
}

func testPing(t *testing.T, s keyward.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// cmpOpts compare JSON by meaning, since a store may reformat it.
var cmpOpts = cmp.Options{
	cmp.Transformer("JSON", func(m json.RawMessage) any {
		var v any
		if err := json.Unmarshal(m, &v); err != nil {
			return "invalid JSON: " + string(m)
		}
		return v
	}),
}

func ptr[T any](v T) *T { return &v }

func mustID(tb testing.TB, prefix string) string {
	tb.Helper()
	id, err := keyward.NewID(rand.Reader, prefix)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func mustHash(tb testing.TB) []byte {
	tb.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustUpdate(tb testing.TB, s keyward.Store, fn func(ctx context.Context, tx keyward.Tx) error) {
	tb.Helper()
	ctx := context.Background()
	if err := s.Update(ctx, func(tx keyward.Tx) error { return fn(ctx, tx) }); err != nil {
		tb.Fatalf("Update: %v", err)
	}
}

// mustGet reads one value in a View and fails the test on any error.
func mustGet[T any](tb testing.TB, s keyward.Store, fn func(ctx context.Context, tx keyward.Tx) (T, error)) T {
	tb.Helper()
	v, err := get(s, fn)
	if err != nil {
		tb.Fatalf("View: %v", err)
	}
	return v
}

// get reads one value in a View.
func get[T any](s keyward.Store, fn func(ctx context.Context, tx keyward.Tx) (T, error)) (T, error) {
	ctx := context.Background()
	var v T
	err := s.View(ctx, func(tx keyward.Tx) error {
		var err error
		v, err = fn(ctx, tx)
		return err
	})
	return v, err
}

// update runs fn in an Update and returns its error.
func update(s keyward.Store, fn func(ctx context.Context, tx keyward.Tx) error) error {
	ctx := context.Background()
	return s.Update(ctx, func(tx keyward.Tx) error { return fn(ctx, tx) })
}

// wantCode fails the test unless err is a refusal with the given code.
func wantCode(tb testing.TB, what string, err error, code string) {
	tb.Helper()
	if got := keyward.ErrorCode(err); got != code {
		tb.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func newTenant(tb testing.TB, name string) *keyward.Tenant {
	tb.Helper()
	return &keyward.Tenant{ID: mustID(tb, keyward.PrefixTenant), Name: name, CreatedAt: now,
		Settings: keyward.DefaultSettings()}
}

func mustTenant(tb testing.TB, s keyward.Store, name string) *keyward.Tenant {
	tb.Helper()
	tn := newTenant(tb, name)
	mustUpdate(tb, s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateTenant(ctx, tn) })
	return tn
}

func newUser(tb testing.TB, tenantID, name, email, kind string, roles ...string) *keyward.User {
	tb.Helper()
	return &keyward.User{ID: mustID(tb, keyward.PrefixUser), TenantID: tenantID, Email: email,
		Name: name, Kind: kind, Roles: append([]string{}, roles...), Licensed: true,
		CreatedAt: now, UpdatedAt: now}
}

func mustUser(tb testing.TB, s keyward.Store, tenantID, name, email, kind string, roles ...string) *keyward.User {
	tb.Helper()
	u := newUser(tb, tenantID, name, email, kind, roles...)
	mustUpdate(tb, s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateUser(ctx, u) })
	return u
}

func newKey(tb testing.TB, owner *keyward.User, name string, opts ...func(*keyward.Key)) *keyward.Key {
	tb.Helper()
	k := &keyward.Key{ID: mustID(tb, keyward.PrefixKey), TenantID: owner.TenantID, Name: name,
		OwnerID: owner.ID, Role: keyward.KeyRoleAdmin, Scopes: []string{}, Meta: json.RawMessage(`{}`),
		Hash: mustHash(tb), Start: "kw_Ab3d", CreatedAt: now, UpdatedAt: now}
	for _, o := range opts {
		o(k)
	}
	return k
}

func mustKey(tb testing.TB, s keyward.Store, owner *keyward.User, name string, opts ...func(*keyward.Key)) *keyward.Key {
	tb.Helper()
	k := newKey(tb, owner, name, opts...)
	mustUpdate(tb, s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateKey(ctx, k) })
	return k
}

// withOwner sets the owner fields a store fills on read.
func withOwner(k *keyward.Key, owner *keyward.User) *keyward.Key {
	c := *k
	c.OwnerName, c.OwnerEmail, c.Type = owner.Name, owner.Email, owner.Kind
	return &c
}

func mustSession(tb testing.TB, s keyward.Store, u *keyward.User) *keyward.Session {
	tb.Helper()
	ses := &keyward.Session{ID: mustID(tb, keyward.PrefixSession), TenantID: u.TenantID, UserID: u.ID,
		Hash: mustHash(tb), CreatedAt: now, ExpiresAt: now.Add(12 * time.Hour)}
	mustUpdate(tb, s, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateSession(ctx, ses) })
	return ses
}

func getKey(s keyward.Store, tenantID, id string) (*keyward.Key, error) {
	return get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Key, error) {
		return tx.KeyByID(ctx, tenantID, id)
	})
}

func mustGetKey(tb testing.TB, s keyward.Store, tenantID, id string) *keyward.Key {
	tb.Helper()
	k, err := getKey(s, tenantID, id)
	if err != nil {
		tb.Fatalf("KeyByID(%s): %v", id, err)
	}
	return k
}

func getUser(s keyward.Store, tenantID, id string) (*keyward.User, error) {
	return get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.User, error) {
		return tx.UserByID(ctx, tenantID, id)
	})
}

// checkUTC fails the test unless every time is in UTC, as the contract writes them.
func checkUTC(tb testing.TB, what string, times ...*time.Time) {
	tb.Helper()
	for i, tm := range times {
		if tm != nil && tm.Location() != time.UTC {
			tb.Errorf("%s: time %d is in %v, want UTC", what, i, tm.Location())
		}
	}
}

var errBoom = errors.New("boom")

// wellFormedID tells whether id is prefix and 22 base62 characters, as
// keyward.NewID draws them.
func wellFormedID(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != 22 {
		return false
	}
	for _, c := range []byte(rest) {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}
