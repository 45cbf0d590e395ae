package verifier_test

import (
	"context"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verifier"
)

func TestHitAndMiss(t *testing.T) {
	f := newFixture(t, verifier.Options{})
	_, secret := f.newKey(t, keyward.KeyInput{Name: "svc"})
	before, lookups := f.cache.Stats(), f.store.lookups.Load()

	res := f.wantCode(t, secret, keyward.CodeValid)
	if res.Key == nil || res.Key.Name != "svc" {
		t.Fatalf("Verify key = %+v, want the key named svc", res.Key)
	}
	s := f.cache.Stats()
	if s.Misses != before.Misses+1 || f.store.lookups.Load() != lookups+1 {
		t.Fatalf("first verification: stats %+v -> %+v, lookups %d -> %d; want one miss and one lookup",
			before, s, lookups, f.store.lookups.Load())
	}
	for range 100 {
		f.wantCode(t, secret, keyward.CodeValid)
	}
	s2 := f.cache.Stats()
	if s2.Hits != s.Hits+100 || s2.Misses != s.Misses || f.store.lookups.Load() != lookups+1 {
		t.Fatalf("100 more verifications: stats %+v -> %+v, lookups %d; want 100 hits and no lookup",
			s, s2, f.store.lookups.Load()-lookups)
	}
	if s2.Entries < 1 {
		t.Fatalf("Entries = %d, want the key cached", s2.Entries)
	}
}

// A malformed key or a bad checksum is never filled from the store, and
// never counted as a hit or a miss: memory is asked by digest, which no
// stored key has, and ParseSecret refuses it before any fill.
func TestMalformedNeverReachesStore(t *testing.T) {
	f := newFixture(t, verifier.Options{})
	_, secret := f.newKey(t, keyward.KeyInput{})
	bad := secret[:len(secret)-1] + string(rune('0'+(secret[len(secret)-1]-'0'+1)%10))
	if secret[len(secret)-1] < '0' || secret[len(secret)-1] > '9' {
		bad = secret[:len(secret)-1] + "0"
	}
	before, lookups := f.cache.Stats(), f.store.lookups.Load()
	for _, s := range []string{"", "kw_", "nope", secret[:len(secret)-1], bad, secret + "0", "KW" + secret[2:]} {
		f.wantCode(t, s, keyward.CodeNotFound)
	}
	if after := f.cache.Stats(); after.Hits != before.Hits || after.Misses != before.Misses || f.store.lookups.Load() != lookups {
		t.Fatalf("malformed keys reached the cache or store: stats %+v -> %+v, lookups +%d",
			before, after, f.store.lookups.Load()-lookups)
	}
}

func TestNegativeCaching(t *testing.T) {
	f := newFixture(t, verifier.Options{NegativeTTL: 5 * time.Second, MaxAge: time.Hour})
	unknown := unknownSecret(t)
	lookups := f.store.lookups.Load()
	for range 50 {
		f.wantCode(t, unknown, keyward.CodeNotFound)
	}
	if n := f.store.lookups.Load() - lookups; n != 1 {
		t.Fatalf("50 verifications of an unknown key within NegativeTTL looked it up %d times, want 1", n)
	}
	f.clock.Advance(4 * time.Second)
	f.wantCode(t, unknown, keyward.CodeNotFound)
	if n := f.store.lookups.Load() - lookups; n != 1 {
		t.Fatalf("within NegativeTTL: %d lookups, want 1", n)
	}
	f.clock.Advance(time.Second)
	f.wantCode(t, unknown, keyward.CodeNotFound)
	if n := f.store.lookups.Load() - lookups; n != 2 {
		t.Fatalf("after NegativeTTL: %d lookups, want 2", n)
	}
	// A negative answer is remembered per digest: another unknown key is looked up.
	f.wantCode(t, unknownSecret(t), keyward.CodeNotFound)
	if n := f.store.lookups.Load() - lookups; n != 3 {
		t.Fatalf("second unknown key: %d lookups, want 3", n)
	}
}

func TestMaxAge(t *testing.T) {
	f := newFixture(t, verifier.Options{MaxAge: time.Minute})
	k, secret := f.newKey(t, keyward.KeyInput{})
	f.warm(t, secret, keyward.CodeValid)
	// Change the key behind the service's back: no invalidation reaches the
	// cache, so only the maximum age brings the change in.
	ctx := context.Background()
	err := f.db.Update(ctx, func(tx keyward.Tx) error {
		stored, err := tx.KeyByID(ctx, f.tenant, k.ID)
		if err != nil {
			return err
		}
		stored.Disabled = true
		return tx.UpdateKey(ctx, stored)
	})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute - time.Millisecond)
	f.wantCode(t, secret, keyward.CodeValid) // still the cached answer: shows it is cached
	f.clock.Advance(time.Millisecond)
	f.wantCode(t, secret, keyward.CodeInactive)
}

func TestDefaults(t *testing.T) {
	f := newFixture(t, verifier.Options{})
	unknown := unknownSecret(t)
	_, secret := f.newKey(t, keyward.KeyInput{})
	f.warm(t, secret, keyward.CodeValid)
	f.wantCode(t, unknown, keyward.CodeNotFound)
	lookups := f.store.lookups.Load()
	f.clock.Advance(verifier.DefaultNegativeTTL - time.Millisecond)
	f.wantCode(t, unknown, keyward.CodeNotFound)
	f.wantCode(t, secret, keyward.CodeValid)
	if n := f.store.lookups.Load() - lookups; n != 0 {
		t.Fatalf("within the default ages: %d lookups, want 0", n)
	}
	f.clock.Advance(time.Millisecond)
	f.wantCode(t, unknown, keyward.CodeNotFound)
	if n := f.store.lookups.Load() - lookups; n != 1 {
		t.Fatalf("after the default NegativeTTL: %d lookups, want 1", n)
	}
	f.clock.Advance(verifier.DefaultMaxAge - verifier.DefaultNegativeTTL)
	f.wantCode(t, secret, keyward.CodeValid)
	if n := f.store.lookups.Load() - lookups; n != 2 {
		t.Fatalf("after the default MaxAge: %d lookups, want 2", n)
	}
}

// Every change made through the service reaches the very next verification,
// although the key was being answered from memory.
func TestInvalidation(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		person bool // the key belongs to a developer, not to the administrator
		wide   bool // the change affects every key of the tenant
		change func(t *testing.T, f *fixture, k *keyward.Key)
		want   string
		check  func(t *testing.T, res keyward.VerifyResult)
	}{
		{name: "deactivate", want: keyward.CodeInactive, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			if _, err := f.svc.DeactivateKey(ctx, f.p(t), k.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "deactivate and reactivate", want: keyward.CodeValid, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			if _, err := f.svc.DeactivateKey(ctx, f.p(t), k.ID); err != nil {
				t.Fatal(err)
			}
			f.warm(t, f.secretOf(k), keyward.CodeInactive)
			if _, err := f.svc.ReactivateKey(ctx, f.p(t), k.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "revoke", want: keyward.CodeRevoked, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			if _, err := f.svc.RevokeKey(ctx, f.p(t), k.ID, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "bulk revoke by id", want: keyward.CodeRevoked, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			if _, err := f.svc.BulkRevoke(ctx, f.p(t), keyward.BulkRevokeInput{IDs: []string{k.ID}}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "bulk revoke by type", wide: true, want: keyward.CodeRevoked, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			if _, err := f.svc.BulkRevoke(ctx, f.p(t), keyward.BulkRevokeInput{Type: keyward.KindUser}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "rotate without grace", want: keyward.CodeExpired, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			grace := time.Duration(0)
			if _, _, err := f.svc.RotateKey(ctx, f.p(t), k.ID, &grace); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "rotate with grace", want: keyward.CodeValid, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			grace := time.Hour
			if _, _, err := f.svc.RotateKey(ctx, f.p(t), k.ID, &grace); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, res keyward.VerifyResult) {
			if res.Key.ExpiresAt == nil || !res.Key.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("after rotation the old key expires at %v, want within the hour's grace", res.Key.ExpiresAt)
			}
		}},
		{name: "delete", want: keyward.CodeNotFound, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			if err := f.svc.DeleteKey(ctx, f.p(t), k.ID); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, res keyward.VerifyResult) {
			if res.Key != nil {
				t.Errorf("a deleted key's verification shows key %+v", res.Key)
			}
		}},
		{name: "delete owner", person: true, want: keyward.CodeNotFound, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			if err := f.svc.DeleteUser(ctx, f.p(t), k.OwnerID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "keys switched off", wide: true, want: keyward.CodeKeysDisabled, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			f.switchKeys(t, false)
		}},
		{name: "keys switched off and on", wide: true, want: keyward.CodeValid, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			f.switchKeys(t, false)
			f.warm(t, f.secretOf(k), keyward.CodeKeysDisabled)
			f.switchKeys(t, true)
		}},
		{name: "rename", want: keyward.CodeValid, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			name, desc := "renamed", "new description"
			if _, err := f.svc.UpdateKey(ctx, f.p(t), k.ID, keyward.KeyPatch{Name: &name, Description: &desc}); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, res keyward.VerifyResult) {
			if res.Key.Name != "renamed" || res.Key.Description != "new description" {
				t.Errorf("after rename the verification shows %q (%q)", res.Key.Name, res.Key.Description)
			}
		}},
		{name: "rate limit", want: keyward.CodeRateLimited, change: func(t *testing.T, f *fixture, k *keyward.Key) {
			lim := &keyward.RateLimit{Limit: 1, WindowSeconds: 3600}
			if _, err := f.svc.UpdateKey(ctx, f.p(t), k.ID, keyward.KeyPatch{RateLimit: keyward.OptionalRateLimit{Set: true, Value: lim}}); err != nil {
				t.Fatal(err)
			}
			f.wantCode(t, f.secretOf(k), keyward.CodeValid) // the window's one use
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, verifier.Options{MaxAge: time.Hour, NegativeTTL: time.Hour})
			var k *keyward.Key
			var secret string
			if tt.person {
				licensed, pw := true, testPassword
				_, err := f.svc.CreateUser(ctx, f.p(t), keyward.UserInput{Email: "dev@acme.example", Name: "dev",
					Roles: []string{keyward.RoleDeveloper}, Licensed: &licensed, Password: &pw})
				if err != nil {
					t.Fatal(err)
				}
				login, err := f.svc.Login(ctx, "dev@acme.example", testPassword, f.tenant)
				if err != nil {
					t.Fatal(err)
				}
				p, err := f.svc.Authenticate(ctx, login.Token)
				if err != nil {
					t.Fatal(err)
				}
				if k, secret, err = f.svc.CreateKey(ctx, p, keyward.KeyInput{Name: "dev key"}); err != nil {
					t.Fatal(err)
				}
				f.secrets[k.ID] = secret
			} else {
				k, secret = f.newKey(t, keyward.KeyInput{Name: "victim"})
			}
			_, other := f.newKey(t, keyward.KeyInput{Name: "bystander", Role: keyward.KeyRoleAdmin})
			f.warm(t, secret, keyward.CodeValid)
			f.warm(t, other, keyward.CodeValid)

			tt.change(t, f, k)
			res := f.wantCode(t, secret, tt.want)
			if tt.check != nil && !t.Failed() {
				tt.check(t, res)
			}
			// Changing one key leaves another's answer in memory.
			if !tt.wide {
				hits := f.cache.Stats().Hits
				f.wantCode(t, other, keyward.CodeValid)
				if f.cache.Stats().Hits != hits+1 {
					t.Errorf("the other key's cached answer was dropped too")
				}
			}
		})
	}
}

func TestPurge(t *testing.T) {
	f := newFixture(t, verifier.Options{MaxAge: time.Hour, NegativeTTL: time.Hour})
	_, a := f.newKey(t, keyward.KeyInput{Name: "a"})
	_, b := f.newKey(t, keyward.KeyInput{Name: "b"})
	unknown := unknownSecret(t)
	f.warm(t, a, keyward.CodeValid)
	f.warm(t, b, keyward.CodeValid)
	f.warm(t, unknown, keyward.CodeNotFound)
	if n := f.cache.Stats().Entries; n < 3 {
		t.Fatalf("Entries = %d before Purge, want at least 3", n)
	}
	f.cache.Purge()
	if n := f.cache.Stats().Entries; n != 0 {
		t.Fatalf("Entries = %d after Purge, want 0", n)
	}
	lookups := f.store.lookups.Load()
	f.wantCode(t, a, keyward.CodeValid)
	f.wantCode(t, b, keyward.CodeValid)
	f.wantCode(t, unknown, keyward.CodeNotFound)
	if n := f.store.lookups.Load() - lookups; n != 3 {
		t.Fatalf("after Purge: %d lookups, want 3", n)
	}
	f.warm(t, a, keyward.CodeValid)
}

// A suspended cache answers nothing from memory and keeps no fill: every
// verification reads the store, so a change it does not hear of (another
// node's, while the notification connection is down) is still answered.
// Resume starts from empty and caches again.
func TestSuspendAndResume(t *testing.T) {
	f := newFixture(t, verifier.Options{MaxAge: time.Hour, NegativeTTL: time.Hour})
	k, secret := f.newKey(t, keyward.KeyInput{Name: "a"})
	f.warm(t, secret, keyward.CodeValid)

	f.cache.Suspend()
	if n := f.cache.Stats().Entries; n != 0 {
		t.Fatalf("Entries = %d after Suspend, want 0", n)
	}
	lookups := f.store.lookups.Load()
	for range 3 {
		f.wantCode(t, secret, keyward.CodeValid)
	}
	if n := f.store.lookups.Load() - lookups; n != 3 {
		t.Fatalf("suspended: %d lookups for 3 verifications, want 3", n)
	}
	// A change the cache is not told of (as if made on another node) is
	// answered at once.
	if err := f.store.Update(context.Background(), func(tx keyward.Tx) error {
		stored, err := tx.KeyByID(context.Background(), f.tenant, k.ID)
		if err != nil {
			return err
		}
		now := f.clock.Now()
		by := "usr_elsewhere"
		stored.RevokedAt, stored.RevokedBy, stored.UpdatedAt = &now, &by, now
		return tx.UpdateKey(context.Background(), stored)
	}); err != nil {
		t.Fatal(err)
	}
	f.wantCode(t, secret, keyward.CodeRevoked)
	if n := f.cache.Stats().Entries; n != 0 {
		t.Fatalf("Entries = %d while suspended, want 0", n)
	}

	f.cache.Resume()
	_, other := f.newKey(t, keyward.KeyInput{Name: "b"})
	f.warm(t, other, keyward.CodeValid)
	f.warm(t, secret, keyward.CodeRevoked)
}

// The tenant switch invalidates every key of that tenant, and no other
// tenant's.
func TestTenantSwitchIsPerTenant(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verifier.Options{MaxAge: time.Hour})
	_, a := f.newKey(t, keyward.KeyInput{Name: "a"})
	pw := testPassword
	other, err := f.svc.Bootstrap(ctx, keyward.BootstrapInput{Tenant: "Other", Email: "admin@other.example", Password: &pw})
	if err != nil {
		t.Fatal(err)
	}
	f.warm(t, a, keyward.CodeValid)
	f.warm(t, f.key, keyward.CodeValid)
	f.warm(t, other.Secret, keyward.CodeValid)
	f.switchKeys(t, false)
	f.wantCode(t, a, keyward.CodeKeysDisabled)
	f.wantCode(t, f.key, keyward.CodeKeysDisabled)
	hits := f.cache.Stats().Hits
	f.wantCode(t, other.Secret, keyward.CodeValid)
	if f.cache.Stats().Hits != hits+1 {
		t.Errorf("another tenant's cached key was dropped by this tenant's switch")
	}
	if _, err := f.svc.Authenticate(ctx, a); !keyward.IsCode(err, keyward.EUnauthenticated) {
		t.Errorf("Authenticate with a key of a switched-off tenant: %v, want unauthenticated", err)
	}
	f.switchKeys(t, true)
	f.wantCode(t, a, keyward.CodeValid)
	if _, err := f.svc.Authenticate(ctx, a); err != nil {
		t.Errorf("Authenticate after the switch is back on: %v", err)
	}
}

// A cached answer is a shared snapshot; what the service returns from it for
// one verification must not leak into the next through the Judge (scopes
// and roles required).
func TestRequirementsOnCachedKey(t *testing.T) {
	f := newFixture(t, verifier.Options{})
	_, secret := f.newKey(t, keyward.KeyInput{Role: keyward.KeyRoleReadonly, Scopes: []string{"read:a", "read:b"}})
	f.warm(t, secret, keyward.CodeValid)
	for _, tc := range []struct {
		in   keyward.VerifyInput
		want string
	}{
		{keyward.VerifyInput{RequireRole: keyward.KeyRoleAdmin}, keyward.CodeForbidden},
		{keyward.VerifyInput{RequireRole: keyward.KeyRoleReadonly}, keyward.CodeValid},
		{keyward.VerifyInput{RequireScopes: []string{"read:b"}}, keyward.CodeValid},
		{keyward.VerifyInput{RequireScopes: []string{"read:a", "write:a"}}, keyward.CodeForbidden},
		{keyward.VerifyInput{}, keyward.CodeValid},
	} {
		tc.in.Key = secret
		res, err := f.svc.Verify(context.Background(), tc.in)
		if err != nil || res.Code != tc.want {
			t.Errorf("Verify(%+v) = %s, %v; want %s", tc.in, res.Code, err, tc.want)
		}
	}
}

// Expiry is judged at every verification from the cached key's expires_at,
// so a cached key stops at its expiry without any invalidation or lookup.
func TestExpiryOfCachedKey(t *testing.T) {
	f := newFixture(t, verifier.Options{MaxAge: 24 * time.Hour})
	exp := t0.Add(time.Hour)
	_, secret := f.newKey(t, keyward.KeyInput{ExpiresAt: &exp})
	f.warm(t, secret, keyward.CodeValid)
	lookups := f.store.lookups.Load()
	f.clock.Advance(time.Hour - time.Microsecond)
	f.wantCode(t, secret, keyward.CodeValid)
	f.clock.Advance(time.Microsecond)
	f.wantCode(t, secret, keyward.CodeExpired)
	if n := f.store.lookups.Load() - lookups; n != 0 {
		t.Errorf("%d lookups, want the answers from memory", n)
	}
}

// The cached key is the stored key, field for field, whatever fits in the
// cache entry's own text and whatever does not.
func TestCachedKeyIsTheStoredKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verifier.Options{})
	exp := t0.Add(48 * time.Hour)
	long := strings.Repeat("long name ", 20)
	inputs := []keyward.KeyInput{
		{Name: "a"},
		{Name: "short", Description: "fits"},
		{Name: long, Description: strings.Repeat("d", 500)},
		{Name: "ünïcödé ключ 鍵", Description: "ok"},
		{Name: "full", Role: keyward.KeyRoleAdmin, Scopes: []string{"read:x", "write:y"}, Meta: []byte(`{"team":"core","n":1}`),
			ExpiresAt: &exp, RateLimit: &keyward.RateLimit{Limit: 100, WindowSeconds: 60}},
	}
	for _, in := range inputs {
		k, secret := f.newKey(t, in)
		f.warm(t, secret, keyward.CodeValid)
		res := f.wantCode(t, secret, keyward.CodeValid)
		stored, err := f.svc.GetKey(ctx, f.p(t), k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res.Key, stored) {
			t.Errorf("cached key differs from the stored one:\n cached %+v\n stored %+v", *res.Key, *stored)
		}
	}
	// Revoked keys keep their revocation fields in the cache.
	k, secret := f.newKey(t, keyward.KeyInput{Name: "to revoke"})
	reason := "leaked"
	if _, err := f.svc.RevokeKey(ctx, f.p(t), k.ID, &reason); err != nil {
		t.Fatal(err)
	}
	f.warm(t, secret, keyward.CodeRevoked)
	res := f.verify(t, secret)
	stored, _ := f.svc.GetKey(ctx, f.p(t), k.ID)
	if !reflect.DeepEqual(res.Key, stored) || res.Key.RevokeReason == nil || *res.Key.RevokeReason != reason {
		t.Errorf("cached revoked key differs from the stored one:\n cached %+v\n stored %+v", *res.Key, *stored)
	}
}

// Answers of "no such key" are bounded: a flood of made-up well-formed keys
// does not grow the cache past MaxNegative, and each is still answered.
func TestNegativeAnswersAreBounded(t *testing.T) {
	f := newFixture(t, verifier.Options{MaxNegative: 64 * 4, NegativeTTL: time.Hour})
	_, secret := f.newKey(t, keyward.KeyInput{})
	f.warm(t, secret, keyward.CodeValid)
	r := rand.NewChaCha8([32]byte{1, 2})
	for range 3000 {
		s, err := keyward.NewSecret(r, "kw")
		if err != nil {
			t.Fatal(err)
		}
		f.wantCode(t, s, keyward.CodeNotFound)
	}
	if n := f.cache.Stats().Entries; n > 64*4+1 {
		t.Errorf("after 3000 unknown keys the cache holds %d entries, want at most %d", n, 64*4+1)
	}
	// Found keys are not crowded out.
	hits := f.cache.Stats().Hits
	f.wantCode(t, secret, keyward.CodeValid)
	if f.cache.Stats().Hits != hits+1 {
		t.Errorf("the found key's answer was dropped")
	}
	// Once the remembered answers expire, new ones are remembered again.
	f.clock.Advance(time.Hour)
	unknown := unknownSecret(t)
	f.wantCode(t, unknown, keyward.CodeNotFound)
	lookups := f.store.lookups.Load()
	f.wantCode(t, unknown, keyward.CodeNotFound)
	if n := f.store.lookups.Load() - lookups; n != 0 {
		t.Errorf("after the old answers expired a new one was not remembered (%d lookups)", n)
	}
}

// Ages are measured on one scale whatever kind of time the caller passes
// (with a monotonic reading or without: the service passes both), and an
// age below zero (the wall clock stepped back) is not fresh: the store
// answers, so the one-minute net holds whatever the clock does.
func TestAgesOnOneScale(t *testing.T) {
	f := newFixture(t, verifier.Options{MaxAge: time.Minute, NegativeTTL: time.Minute})
	_, secret := f.newKey(t, keyward.KeyInput{Name: "a"})
	h, err := keyward.NewHasher(testPepper)
	if err != nil {
		t.Fatal(err)
	}
	d := h.Digest(secret)
	ctx := context.Background()
	base := time.Now()
	if _, _, err := f.cache.Resolve(ctx, d, base); err != nil { // with a monotonic reading
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		at   time.Time
		hit  bool
	}{
		{"30 s later, no monotonic reading", base.Round(0).Add(30 * time.Second), true},
		{"30 s later, UTC and truncated", base.UTC().Truncate(time.Microsecond).Add(30 * time.Second), true},
		{"2 minutes later", base.Add(2 * time.Minute), false},
		{"an hour before (the clock stepped back)", base.Round(0).Add(-time.Hour), false},
	} {
		if _, _, ok := f.cache.Cached(d, c.at); ok != c.hit {
			t.Errorf("%s: hit %v, want %v", c.name, ok, c.hit)
		}
	}
}
