package verifier_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testclock"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verifier"
)

const testPassword = "correct horse battery staple"

var (
	testPepper = []byte("keyward-verifier-test-pepper-0123456789")
	cheap      = keyward.PasswordParams{Memory: 64, Time: 1, Threads: 1}
	t0         = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
)

// probeStore is the real store with two additions for tests: it counts the
// key lookups that reach it (KeyForVerify, the cache's one way to the
// store), and it can pause for a random while right after the key was read,
// which is where a fill is most exposed to a concurrent change (it has read
// the old row and not yet installed it).
type probeStore struct {
	keyward.Store
	lookups  atomic.Int64
	maxDelay atomic.Int64 // nanoseconds; 0: no delay
}

func (s *probeStore) KeyForVerify(ctx context.Context, hash []byte) (*keyward.Key, *keyward.Settings, error) {
	s.lookups.Add(1)
	k, set, err := s.Store.KeyForVerify(ctx, hash)
	if d := s.maxDelay.Load(); d > 0 {
		jitter(time.Duration(d))
	}
	return k, set, err
}

// jitter waits for nothing in particular: a random pause of up to max, a
// yield, or no pause at all, to shift the interleaving of goroutines.
func jitter(max time.Duration) {
	switch rand.IntN(3) {
	case 0:
		time.Sleep(rand.N(max))
	case 1:
		runtime.Gosched()
	}
}

// fixture is a real Service over a real SQLite file, with the cache in front
// of the store the way cmd/keyward wires it.
type fixture struct {
	db     *sqlite.DB
	store  *probeStore
	cache  *verifier.Cache
	svc    *keyward.Service
	clock  *testclock.Clock // the cache's clock
	tenant string
	admin  string // a session token of the tenant's administrator
	key    string // the bootstrap admin key
	keyID  string

	secrets map[string]string // by key ID, of the keys made by newKey
}

// secretOf is the secret of a key made by newKey.
func (f *fixture) secretOf(k *keyward.Key) string { return f.secrets[k.ID] }

// newFixture bootstraps a tenant whose administrator may hold up to 1000
// keys, with a cache tuned by opts. The service (and so the cache, which
// measures ages on the service's clock) runs on the fixture's clock.
func newFixture(tb testing.TB, opts verifier.Options) *fixture {
	tb.Helper()
	return newFixtureOn(tb, opts, nil)
}

// newFixtureOn is newFixture with the service on the clock now; nil is the
// fixture's clock.
func newFixtureOn(tb testing.TB, opts verifier.Options, now func() time.Time) *fixture {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "k.db"))
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	f := &fixture{db: db, store: &probeStore{Store: db}, clock: testclock.New(t0), secrets: map[string]string{}}
	svcNow := now
	if svcNow == nil {
		svcNow = f.clock.Now
	}
	f.cache = verifier.New(f.store, opts)
	h, err := keyward.NewHasher(testPepper)
	if err != nil {
		tb.Fatal(err)
	}
	f.svc = keyward.NewService(f.store, h, keyward.Options{Now: svcNow, PasswordParams: &cheap,
		Resolver: f.cache, OnChange: f.cache.Invalidate})
	pw := testPassword
	res, err := f.svc.Bootstrap(ctx, keyward.BootstrapInput{Tenant: "Acme", Email: "admin@acme.example", Password: &pw})
	if err != nil {
		tb.Fatalf("Bootstrap: %v", err)
	}
	f.tenant, f.key, f.keyID = res.TenantID, res.Secret, res.KeyID
	login, err := f.svc.Login(ctx, "admin@acme.example", testPassword, res.TenantID)
	if err != nil {
		tb.Fatalf("Login: %v", err)
	}
	f.admin = login.Token
	n := 1000
	f.settings(tb, keyward.SettingsPatch{MaxKeysPerUser: &n, MaxKeysPerServiceUser: &n})
	return f
}

// p is the administrator, authenticated afresh by session.
func (f *fixture) p(tb testing.TB) *keyward.Principal {
	tb.Helper()
	p, err := f.svc.Authenticate(context.Background(), f.admin)
	if err != nil {
		tb.Fatalf("Authenticate: %v", err)
	}
	return p
}

func (f *fixture) settings(tb testing.TB, patch keyward.SettingsPatch) {
	tb.Helper()
	if _, err := f.svc.UpdateSettings(context.Background(), f.p(tb), patch); err != nil {
		tb.Fatalf("UpdateSettings: %v", err)
	}
}

// switchKeys turns the tenant's api_keys_enabled on or off.
func (f *fixture) switchKeys(tb testing.TB, on bool) {
	tb.Helper()
	f.settings(tb, keyward.SettingsPatch{APIKeysEnabled: &on})
}

// newKey creates a key of the administrator's (or of owner, when set).
func (f *fixture) newKey(tb testing.TB, in keyward.KeyInput) (*keyward.Key, string) {
	tb.Helper()
	if in.Name == "" {
		in.Name = "test key"
	}
	k, secret, err := f.svc.CreateKey(context.Background(), f.p(tb), in)
	if err != nil {
		tb.Fatalf("CreateKey: %v", err)
	}
	f.secrets[k.ID] = secret
	return k, secret
}

// verify asks the service about a secret; errors fail the test.
func (f *fixture) verify(tb testing.TB, secret string) keyward.VerifyResult {
	tb.Helper()
	res, err := f.svc.Verify(context.Background(), keyward.VerifyInput{Key: secret})
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return res
}

// wantCode verifies secret and checks the code.
func (f *fixture) wantCode(tb testing.TB, secret, want string) keyward.VerifyResult {
	tb.Helper()
	res := f.verify(tb, secret)
	if res.Code != want {
		tb.Errorf("Verify(%s…) = %s, want %s", secret[:8], res.Code, want)
	}
	return res
}

// warm verifies a key twice and checks that the second answer came from
// memory, so that a later answer shows whether the cache was invalidated.
func (f *fixture) warm(tb testing.TB, secret, want string) {
	tb.Helper()
	f.wantCode(tb, secret, want)
	before := f.cache.Stats()
	lookups := f.store.lookups.Load()
	f.wantCode(tb, secret, want)
	after := f.cache.Stats()
	if after.Hits != before.Hits+1 || after.Misses != before.Misses || f.store.lookups.Load() != lookups {
		tb.Fatalf("second verification was not a cache hit: stats %+v -> %+v", before, after)
	}
}

// unknownSecret is a well-formed secret with a good checksum that no key has.
func unknownSecret(tb testing.TB) string {
	tb.Helper()
	s, err := keyward.NewSecret(rand.NewChaCha8([32]byte{byte(rand.IntN(256)), byte(rand.IntN(256)), 7}), "kw")
	if err != nil {
		tb.Fatal(err)
	}
	if !keyward.ParseSecret(s) || !strings.HasPrefix(s, "kw_") {
		tb.Fatalf("NewSecret made %q", s)
	}
	return s
}
