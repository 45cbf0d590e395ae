package keyward_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward"
)

// keysEnv is one tenant with a developer, a plain user and a system user.
type keysEnv struct {
	e      *env
	a      *tenant
	dev    *caller
	plain  *caller
	system *keyward.User
}

func mustKeysEnv(tb testing.TB) *keysEnv {
	tb.Helper()
	e := mustService(tb)
	a := mustTenant(tb, e, "Acme")
	mustSettings(tb, e, a.Admin, keyward.SettingsPatch{MaxKeysPerUser: ptr(1000), MaxKeysPerServiceUser: ptr(1000)})
	return &keysEnv{e: e, a: a,
		dev:    mustPerson(tb, e, a.Admin, "dev@acme.example", true, keyward.RoleDeveloper),
		plain:  mustPerson(tb, e, a.Admin, "plain@acme.example", true),
		system: mustUser(tb, e, a.Admin, keyward.UserInput{Email: "svc@acme.example", Name: "Svc", Kind: keyward.KindSystem}),
	}
}

func TestCreateKey(t *testing.T) {
	k := mustKeysEnv(t)
	ctx := context.Background()
	exp := t0.Add(48 * time.Hour)
	key, secret, err := k.e.svc.CreateKey(ctx, k.dev.p(t), keyward.KeyInput{
		Name: "  Invoices bot  ", Description: "reads invoices", Role: keyward.KeyRoleAdmin,
		Scopes: []string{"invoices:read", "invoices:write", "invoices:read"}, Meta: json.RawMessage(`{"team": "billing", "n": 1}`),
		ExpiresAt: &exp,
	})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	k.e.remember(secret)
	dev := k.dev.p(t).User
	want := &keyward.Key{
		TenantID: k.a.ID, Name: "Invoices bot", Description: "reads invoices", OwnerID: dev.ID,
		Role: keyward.KeyRoleAdmin, Scopes: []string{"invoices:read", "invoices:write"}, Meta: json.RawMessage(`{"n":1,"team":"billing"}`),
		Start: keyward.SecretStart(secret), CreatedAt: t0, UpdatedAt: t0, ExpiresAt: &exp,
		OwnerName: dev.Name, OwnerEmail: dev.Email, Type: keyward.KindUser,
	}
	opts := cmp.Options{cmpopts.IgnoreFields(keyward.Key{}, "ID", "Hash")}
	if diff := cmp.Diff(want, key, opts); diff != "" {
		t.Errorf("created key (-want +got):\n%s", diff)
	}
	got, err := k.e.svc.GetKey(ctx, k.dev.p(t), key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("key read back (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(key.ID, keyward.PrefixKey) || !keyward.ParseSecret(secret) || !strings.HasPrefix(secret, "kw_") {
		t.Errorf("id %q, secret shape %v", key.ID, keyward.ParseSecret(secret))
	}
	if got := key.Status(k.e.clock.Now()); got != keyward.StatusActive {
		t.Errorf("new key is %s", got)
	}
	if res, err := k.e.svc.Verify(ctx, keyward.VerifyInput{Key: secret}); err != nil || res.Code != keyward.CodeValid {
		t.Errorf("Verify(new secret) = %+v, %v", res.Code, err)
	}

	// Defaults: readonly, no scopes, empty meta, never expires.
	key, _ = mustKey(t, k.e, k.dev, keyward.KeyInput{Name: "plain"})
	if key.Role != keyward.KeyRoleReadonly || len(key.Scopes) != 0 || string(key.Meta) != "{}" || key.ExpiresAt != nil {
		t.Errorf("defaults: role %q, scopes %v, meta %s, expires %v", key.Role, key.Scopes, key.Meta, key.ExpiresAt)
	}
	// A system key says so.
	key, _ = mustKey(t, k.e, k.a.Admin, keyward.KeyInput{Name: "svc", OwnerID: k.system.ID})
	if key.Type != keyward.KindSystem || key.OwnerID != k.system.ID || key.OwnerName != "Svc" {
		t.Errorf("system key: type %q owner %q %q", key.Type, key.OwnerID, key.OwnerName)
	}
}

// TestCreateKeyRefusals covers every refusal of POST /v1/keys.
func TestCreateKeyRefusals(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxExpirationDays: keyward.OptionalInt{Set: true, Value: ptr(30)},
		MaxKeysPerUser: ptr(2), MaxKeysPerServiceUser: ptr(3)})
	b := mustTenant(t, e, "Globex")
	unlicensed := mustPerson(t, e, k.a.Admin, "unlicensed@acme.example", false, keyward.RoleDeveloper)
	adminOnly := mustPerson(t, e, k.a.Admin, "boss@acme.example", true, keyward.RoleTenantAdmin)
	full := mustPerson(t, e, k.a.Admin, "full@acme.example", true, keyward.RoleDeveloper)
	sysFull := mustUser(t, e, k.a.Admin, keyward.UserInput{Email: "full-svc@acme.example", Kind: keyward.KindSystem})
	for range 2 {
		mustKey(t, e, full, keyward.KeyInput{})
	}
	for range 3 {
		mustKey(t, e, k.a.Admin, keyward.KeyInput{OwnerID: sysFull.ID})
	}
	now := e.clock.Now()
	long := strings.Repeat("n", 256)
	for _, c := range []struct {
		name string
		by   *caller
		in   keyward.KeyInput
		want string
	}{
		{"developer", k.dev, keyward.KeyInput{Name: "ok"}, ok},
		{"not a developer", k.plain, keyward.KeyInput{Name: "x"}, keyward.EDeveloperRequired},
		{"admin without developer", adminOnly, keyward.KeyInput{Name: "x"}, keyward.EDeveloperRequired},
		{"not licensed", unlicensed, keyward.KeyInput{Name: "x"}, keyward.ELicenseRequired},
		{"another person by a developer", k.dev, keyward.KeyInput{Name: "x", OwnerID: full.userID}, keyward.EPermissionDenied},
		{"another person by an admin", k.a.Admin, keyward.KeyInput{Name: "x", OwnerID: k.dev.userID}, keyward.EPermissionDenied},
		{"system user by a developer", k.dev, keyward.KeyInput{Name: "x", OwnerID: k.system.ID}, keyward.EPermissionDenied},
		{"system user by a plain user", k.plain, keyward.KeyInput{Name: "x", OwnerID: k.system.ID}, keyward.EPermissionDenied},
		{"system user by an admin without developer", adminOnly, keyward.KeyInput{Name: "x", OwnerID: k.system.ID}, ok},
		{"unknown owner by an admin", k.a.Admin, keyward.KeyInput{Name: "x", OwnerID: "usr_unknown"}, keyward.ENotFound},
		// A non-admin cannot tell a missing user from another's: no probing.
		{"unknown owner by a developer", k.dev, keyward.KeyInput{Name: "x", OwnerID: "usr_unknown"}, keyward.EPermissionDenied},
		{"another tenant's user by a developer", k.dev, keyward.KeyInput{Name: "x", OwnerID: b.Admin.userID}, keyward.EPermissionDenied},
		{"expires now", k.dev, keyward.KeyInput{Name: "x", ExpiresAt: ptr(now)}, keyward.EInvalid},
		{"expired yesterday", k.dev, keyward.KeyInput{Name: "x", ExpiresAt: ptr(now.Add(-24 * time.Hour))}, keyward.EInvalid},
		{"expires in a microsecond", k.dev, keyward.KeyInput{Name: "x", ExpiresAt: ptr(now.Add(time.Microsecond))}, ok},
		{"expires at the maximum", adminOnly, keyward.KeyInput{Name: "x", OwnerID: k.system.ID, ExpiresAt: ptr(now.AddDate(0, 0, 30))}, ok},
		{"beyond the maximum", k.dev, keyward.KeyInput{Name: "x", ExpiresAt: ptr(now.AddDate(0, 0, 30).Add(time.Microsecond))}, keyward.EExpirationTooLong},
		{"far beyond the maximum", k.a.Admin, keyward.KeyInput{Name: "x", ExpiresAt: ptr(now.AddDate(10, 0, 0))}, keyward.EExpirationTooLong},
		{"user at the maximum", full, keyward.KeyInput{Name: "x"}, keyward.EKeyLimitReached},
		{"system user at the maximum", k.a.Admin, keyward.KeyInput{Name: "x", OwnerID: sysFull.ID}, keyward.EKeyLimitReached},
		{"empty name", k.a.Admin, keyward.KeyInput{Name: "   "}, keyward.EInvalid},
		{"name of 256", k.a.Admin, keyward.KeyInput{Name: long}, keyward.EInvalid},
		{"name with a control character", k.a.Admin, keyward.KeyInput{Name: "a\x01b"}, keyward.EInvalid},
		{"bad role", k.a.Admin, keyward.KeyInput{Name: "x", Role: "owner"}, keyward.EInvalid},
		{"scope with a space", k.a.Admin, keyward.KeyInput{Name: "x", Scopes: []string{"a b"}}, keyward.EInvalid},
		{"empty scope", k.a.Admin, keyward.KeyInput{Name: "x", Scopes: []string{""}}, keyward.EInvalid},
		{"meta not an object", k.a.Admin, keyward.KeyInput{Name: "x", Meta: json.RawMessage(`[1]`)}, keyward.EInvalid},
		{"meta not JSON", k.a.Admin, keyward.KeyInput{Name: "x", Meta: json.RawMessage(`{`)}, keyward.EInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			key, secret, err := e.svc.CreateKey(ctx, c.by.p(t), c.in)
			wantCode(t, err, c.want)
			if err != nil && (key != nil || secret != "") {
				t.Errorf("a refusal returned a key %v or a secret", key)
			}
			if err == nil {
				e.remember(secret)
			}
		})
	}
	t.Run("name of 255 characters", func(t *testing.T) {
		mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: strings.Repeat("é", 255), ExpiresAt: ptr(now.Add(time.Hour))})
	})

	// The tenant switch wins over everything.
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(false)})
	for _, c := range []struct {
		name string
		by   *caller
		in   keyward.KeyInput
	}{
		{"developer", k.dev, keyward.KeyInput{Name: "x"}},
		{"admin", k.a.Admin, keyward.KeyInput{Name: "x"}},
		{"system user", k.a.Admin, keyward.KeyInput{Name: "x", OwnerID: k.system.ID}},
		{"not a developer", k.plain, keyward.KeyInput{Name: "x"}},
		{"not licensed", unlicensed, keyward.KeyInput{Name: "x"}},
		{"at the maximum", full, keyward.KeyInput{Name: "x"}},
		{"too long", k.dev, keyward.KeyInput{Name: "x", ExpiresAt: ptr(now.AddDate(1, 0, 0))}},
	} {
		_, _, err := e.svc.CreateKey(ctx, c.by.p(t), c.in)
		if keyward.ErrorCode(err) != keyward.EKeysDisabled {
			t.Errorf("keys off, %s: %v, want %s", c.name, err, keyward.EKeysDisabled)
		}
	}
}

func TestDefaultExpiry(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	never, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "never"})
	if never.ExpiresAt != nil {
		t.Errorf("without a maximum a key expires at %v, want never", never.ExpiresAt)
	}
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxExpirationDays: keyward.OptionalInt{Set: true, Value: ptr(30)}})
	e.clock.Advance(90 * time.Minute)
	d30, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "30 days"})
	if want := e.clock.Now().AddDate(0, 0, 30); d30.ExpiresAt == nil || !d30.ExpiresAt.Equal(want) {
		t.Errorf("default expiry %v, want %v", d30.ExpiresAt, want)
	}
	short, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "short", ExpiresAt: ptr(e.clock.Now().Add(time.Hour))})
	if want := e.clock.Now().Add(time.Hour); !short.ExpiresAt.Equal(want) {
		t.Errorf("explicit expiry %v, want %v", short.ExpiresAt, want)
	}
	// Expiry is stored at microsecond precision, in UTC.
	odd := time.Date(2026, 12, 1, 11, 0, 0, 123456789, time.FixedZone("CET", 3600))
	oddKey, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "odd", ExpiresAt: &odd})
	got, err := e.svc.GetKey(ctx, k.dev.p(t), oddKey.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := odd.UTC().Truncate(time.Microsecond); !got.ExpiresAt.Equal(want) || got.ExpiresAt.Location() != time.UTC {
		t.Errorf("stored expiry %v, want %v", got.ExpiresAt, want)
	}

	// A new maximum applies to keys created afterwards only.
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxExpirationDays: keyward.OptionalInt{Set: true, Value: ptr(7)}})
	for _, key := range []*keyward.Key{never, d30} {
		got, err := e.svc.GetKey(ctx, k.dev.p(t), key.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(key.ExpiresAt, got.ExpiresAt); diff != "" {
			t.Errorf("%s: expiry changed with the setting (-before +after):\n%s", key.Name, diff)
		}
	}
	d7, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "7 days"})
	if want := e.clock.Now().AddDate(0, 0, 7); !d7.ExpiresAt.Equal(want) {
		t.Errorf("default expiry %v, want %v", d7.ExpiresAt, want)
	}
	// null clears the maximum.
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxExpirationDays: keyward.OptionalInt{Set: true}})
	free, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "free"})
	if free.ExpiresAt != nil {
		t.Errorf("after clearing the maximum a key expires at %v", free.ExpiresAt)
	}
	mustKey(t, e, k.dev, keyward.KeyInput{Name: "far", ExpiresAt: ptr(e.clock.Now().AddDate(50, 0, 0))})
}

// TestKeyLimit: active and inactive keys count; revoked and expired do not;
// lowering the maximum leaves existing keys alone.
func TestKeyLimit(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxKeysPerUser: ptr(3), MaxKeysPerServiceUser: ptr(2)})
	k1, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "1"})
	k2, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "2"})
	k3, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "3", ExpiresAt: ptr(t0.Add(time.Hour))})
	create := func(c *caller, in keyward.KeyInput) error {
		_, s, err := e.svc.CreateKey(ctx, c.p(t), in)
		if err == nil {
			e.remember(s)
		}
		return err
	}
	wantCode(t, create(k.dev, keyward.KeyInput{Name: "4"}), keyward.EKeyLimitReached)
	if _, err := e.svc.DeactivateKey(ctx, k.dev.p(t), k1.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, create(k.dev, keyward.KeyInput{Name: "4"}), keyward.EKeyLimitReached)
	if _, err := e.svc.RevokeKey(ctx, k.dev.p(t), k2.ID, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, create(k.dev, keyward.KeyInput{Name: "4"}), ok)
	wantCode(t, create(k.dev, keyward.KeyInput{Name: "5"}), keyward.EKeyLimitReached)
	e.clock.Advance(time.Hour) // k3 expires exactly now
	if got := status(t, e, k.a.ID, k3.ID); got != keyward.StatusExpired {
		t.Fatalf("k3 is %s", got)
	}
	wantCode(t, create(k.dev, keyward.KeyInput{Name: "5"}), ok)
	wantCode(t, create(k.dev, keyward.KeyInput{Name: "6"}), keyward.EKeyLimitReached)
	// The limit is per owner: the admin and a system user have their own.
	wantCode(t, create(k.a.Admin, keyward.KeyInput{Name: "admin's"}), ok)
	wantCode(t, create(k.a.Admin, keyward.KeyInput{Name: "s1", OwnerID: k.system.ID}), ok)
	wantCode(t, create(k.a.Admin, keyward.KeyInput{Name: "s2", OwnerID: k.system.ID}), ok)
	wantCode(t, create(k.a.Admin, keyward.KeyInput{Name: "s3", OwnerID: k.system.ID}), keyward.EKeyLimitReached)
	// A system user's limit is max_keys_per_service_user, a person's max_keys_per_user.
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxKeysPerServiceUser: ptr(3)})
	wantCode(t, create(k.a.Admin, keyward.KeyInput{Name: "s3", OwnerID: k.system.ID}), ok)
	wantCode(t, create(k.dev, keyward.KeyInput{Name: "6"}), keyward.EKeyLimitReached)
	// Lowering the maximum keeps existing keys working.
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxKeysPerUser: ptr(1)})
	page, err := e.svc.ListKeys(ctx, k.dev.p(t), keyward.KeyQuery{Status: keyward.StatusActive})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 2 {
		t.Errorf("%d active keys after lowering the maximum, want 2", page.Total)
	}
	wantCode(t, create(k.dev, keyward.KeyInput{Name: "7"}), keyward.EKeyLimitReached)
	if _, err := e.svc.ReactivateKey(ctx, k.dev.p(t), k1.ID); err != nil {
		t.Errorf("reactivating a key over the maximum: %v", err)
	}
}

// TestKeyLimitIsAtomic: concurrent creates for one owner never exceed the maximum.
func TestKeyLimitIsAtomic(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{keyward.KindUser, keyward.KindSystem} {
		t.Run(kind, func(t *testing.T) {
			k := mustKeysEnv(t)
			e := k.e
			mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxKeysPerUser: ptr(5), MaxKeysPerServiceUser: ptr(5)})
			by, owner := k.dev, k.dev.userID
			if kind == keyward.KindSystem {
				by, owner = k.a.Admin, k.system.ID
			}
			p := by.p(t)
			var wg sync.WaitGroup
			codes := make([]string, 20)
			for i := range codes {
				wg.Go(func() {
					_, _, err := e.svc.CreateKey(ctx, p, keyward.KeyInput{Name: fmt.Sprintf("c%d", i), OwnerID: owner})
					codes[i] = keyward.ErrorCode(err)
				})
			}
			wg.Wait()
			count := map[string]int{}
			for _, c := range codes {
				count[c]++
			}
			if diff := cmp.Diff(map[string]int{ok: 5, keyward.EKeyLimitReached: 15}, count); diff != "" {
				t.Errorf("outcomes of 20 concurrent creates (-want +got):\n%s", diff)
			}
			page, err := e.svc.ListKeys(ctx, k.a.Admin.p(t), keyward.KeyQuery{OwnerID: owner})
			if err != nil {
				t.Fatal(err)
			}
			if page.Total != 5 {
				t.Errorf("the owner holds %d keys, want 5", page.Total)
			}
			if evs := allEvents(t, e, k.a.ID, keyward.EventFilter{Action: keyward.ActionKeyCreated}); len(evs) != 1+5 {
				t.Errorf("%d key.created events, want 6 (bootstrap and 5)", len(evs))
			}
		})
	}
}

// TestStatusTransitions: deactivate takes only an active key, reactivate only
// an inactive one, revoke an active or inactive one; revoked and expired keys
// are final.
func TestStatusTransitions(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	svc := e.svc
	const notRevocable = "Unable to Revoke API Key"
	type op func(p *keyward.Principal, id string) (*keyward.Key, error)
	deactivate := op(func(p *keyward.Principal, id string) (*keyward.Key, error) { return svc.DeactivateKey(ctx, p, id) })
	reactivate := op(func(p *keyward.Principal, id string) (*keyward.Key, error) { return svc.ReactivateKey(ctx, p, id) })
	revoke := op(func(p *keyward.Principal, id string) (*keyward.Key, error) {
		return svc.RevokeKey(ctx, p, id, ptr("why"))
	})
	for _, c := range []struct {
		name     string
		from     string
		op       op
		want     string // code
		wantStat string // status afterwards
	}{
		{"deactivate active", keyward.StatusActive, deactivate, ok, keyward.StatusInactive},
		{"deactivate inactive", keyward.StatusInactive, deactivate, keyward.EConflict, keyward.StatusInactive},
		{"deactivate revoked", keyward.StatusRevoked, deactivate, keyward.EConflict, keyward.StatusRevoked},
		{"deactivate expired", keyward.StatusExpired, deactivate, keyward.EConflict, keyward.StatusExpired},
		{"reactivate inactive", keyward.StatusInactive, reactivate, ok, keyward.StatusActive},
		{"reactivate active", keyward.StatusActive, reactivate, keyward.EConflict, keyward.StatusActive},
		{"reactivate revoked", keyward.StatusRevoked, reactivate, keyward.EConflict, keyward.StatusRevoked},
		{"reactivate expired", keyward.StatusExpired, reactivate, keyward.EConflict, keyward.StatusExpired},
		{"reactivate inactive then expired", "inactive-expired", reactivate, keyward.EConflict, keyward.StatusExpired},
		{"revoke active", keyward.StatusActive, revoke, ok, keyward.StatusRevoked},
		{"revoke inactive", keyward.StatusInactive, revoke, ok, keyward.StatusRevoked},
		{"revoke revoked", keyward.StatusRevoked, revoke, keyward.ENotRevocable, keyward.StatusRevoked},
		{"revoke expired", keyward.StatusExpired, revoke, keyward.ENotRevocable, keyward.StatusExpired},
		{"revoke inactive then expired", "inactive-expired", revoke, keyward.ENotRevocable, keyward.StatusExpired},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, by := range []*caller{k.dev, k.a.Admin} { // the owner, and a tenant admin
				in := keyward.KeyInput{Name: c.name}
				if c.from == keyward.StatusExpired || c.from == "inactive-expired" {
					in.ExpiresAt = ptr(e.clock.Now().Add(time.Minute))
				}
				key, _ := mustKey(t, e, k.dev, in)
				p := k.dev.p(t)
				switch c.from {
				case keyward.StatusInactive, "inactive-expired":
					if _, err := svc.DeactivateKey(ctx, p, key.ID); err != nil {
						t.Fatal(err)
					}
				case keyward.StatusRevoked:
					if _, err := svc.RevokeKey(ctx, p, key.ID, ptr("first")); err != nil {
						t.Fatal(err)
					}
				}
				if c.from == keyward.StatusExpired || c.from == "inactive-expired" {
					e.clock.Advance(time.Minute) // exactly at expires_at
				}
				before := storedKey(t, e, k.a.ID, key.ID)
				e.clock.Advance(time.Second)
				got, err := c.op(by.p(t), key.ID)
				wantCode(t, err, c.want)
				if st := status(t, e, k.a.ID, key.ID); st != c.wantStat {
					t.Errorf("by %s: status %s afterwards, want %s", by.name, st, c.wantStat)
				}
				if err != nil {
					if c.want == keyward.ENotRevocable && !strings.HasPrefix(keyward.ErrorMessage(err), notRevocable+": ") {
						t.Errorf("message %q, want it to start with %q", keyward.ErrorMessage(err), notRevocable+": ")
					}
					if diff := cmp.Diff(before, storedKey(t, e, k.a.ID, key.ID)); diff != "" {
						t.Errorf("a refused change changed the key (-before +after):\n%s", diff)
					}
					continue
				}
				if got.Status(e.clock.Now()) != c.wantStat || !got.UpdatedAt.Equal(e.clock.Now()) {
					t.Errorf("returned key: status %s, updated %v", got.Status(e.clock.Now()), got.UpdatedAt)
				}
				if c.wantStat == keyward.StatusRevoked {
					stored := storedKey(t, e, k.a.ID, key.ID)
					u := by.p(t).User
					if stored.RevokedAt == nil || !stored.RevokedAt.Equal(e.clock.Now()) || stored.RevokedBy == nil || *stored.RevokedBy != u.ID ||
						stored.RevokeReason == nil || *stored.RevokeReason != "why" {
						t.Errorf("revocation fields: at %v by %v reason %v", stored.RevokedAt, stored.RevokedBy, stored.RevokeReason)
					}
				}
			}
		})
	}
}

// TestRevokedIsFinal: a revoked key stays revoked through every later change.
func TestRevokedIsFinal(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	key, secret := mustKey(t, e, k.dev, keyward.KeyInput{Name: "r"})
	p := k.dev.p(t)
	if _, err := e.svc.RevokeKey(ctx, p, key.ID, ptr("first")); err != nil {
		t.Fatal(err)
	}
	revokedAt := e.clock.Now()
	e.clock.Advance(time.Hour)
	if _, err := e.svc.UpdateKey(ctx, p, key.ID, keyward.KeyPatch{Name: ptr("renamed")}); err != nil {
		t.Errorf("renaming a revoked key: %v", err)
	}
	_, err := e.svc.RevokeKey(ctx, k.a.Admin.p(t), key.ID, ptr("second"))
	wantCode(t, err, keyward.ENotRevocable)
	res, err := e.svc.BulkRevoke(ctx, k.a.Admin.p(t), keyward.BulkRevokeInput{All: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = res
	stored := storedKey(t, e, k.a.ID, key.ID)
	if !stored.RevokedAt.Equal(revokedAt) || *stored.RevokeReason != "first" || *stored.RevokedBy != k.dev.userID {
		t.Errorf("revocation fields moved: at %v by %v reason %v", stored.RevokedAt, *stored.RevokedBy, *stored.RevokeReason)
	}
	if v, _ := e.svc.Verify(ctx, keyward.VerifyInput{Key: secret}); v.Code != keyward.CodeRevoked {
		t.Errorf("Verify = %s, want REVOKED", v.Code)
	}
}

// TestExpiryByClock: a key becomes expired exactly at expires_at, whatever it
// was, and then can be neither deactivated, reactivated, revoked nor rotated.
func TestExpiryByClock(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	svc := e.svc
	key, secret := mustKey(t, e, k.dev, keyward.KeyInput{Name: "soon", ExpiresAt: ptr(t0.Add(time.Hour))})
	inactive, inactiveSecret := mustKey(t, e, k.dev, keyward.KeyInput{Name: "soon, off", ExpiresAt: ptr(t0.Add(time.Hour))})
	if _, err := svc.DeactivateKey(ctx, k.dev.p(t), inactive.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour - time.Microsecond)
	if st := status(t, e, k.a.ID, key.ID); st != keyward.StatusActive {
		t.Errorf("a microsecond before expiry: %s", st)
	}
	if v, _ := svc.Verify(ctx, keyward.VerifyInput{Key: secret}); v.Code != keyward.CodeValid {
		t.Errorf("Verify a microsecond before expiry = %s", v.Code)
	}
	e.clock.Advance(time.Microsecond)
	for _, c := range []struct {
		key    *keyward.Key
		secret string
	}{{key, secret}, {inactive, inactiveSecret}} {
		if st := status(t, e, k.a.ID, c.key.ID); st != keyward.StatusExpired {
			t.Errorf("%s at expires_at: %s, want expired", c.key.Name, st)
		}
		got, err := svc.GetKey(ctx, k.dev.p(t), c.key.ID)
		if err != nil || got.Status(e.clock.Now()) != keyward.StatusExpired {
			t.Errorf("GetKey: %v", err)
		}
		if v, _ := svc.Verify(ctx, keyward.VerifyInput{Key: c.secret}); v.Code != keyward.CodeExpired || v.Key == nil || v.Key.ID != c.key.ID {
			t.Errorf("Verify = %+v, want EXPIRED with the key", v)
		}
		_, err = svc.Authenticate(ctx, c.secret)
		wantCode(t, err, keyward.EUnauthenticated)
		for _, who := range []*caller{k.dev, k.a.Admin} {
			p := who.p(t)
			_, err = svc.DeactivateKey(ctx, p, c.key.ID)
			wantCode(t, err, keyward.EConflict)
			_, err = svc.ReactivateKey(ctx, p, c.key.ID)
			wantCode(t, err, keyward.EConflict)
			_, err = svc.RevokeKey(ctx, p, c.key.ID, nil)
			wantCode(t, err, keyward.ENotRevocable)
			_, _, err = svc.RotateKey(ctx, p, c.key.ID, nil)
			if who == k.dev {
				wantCode(t, err, keyward.EConflict)
			}
		}
		// It can still be deleted.
		if err := svc.DeleteKey(ctx, k.dev.p(t), c.key.ID); err != nil {
			t.Errorf("deleting an expired key: %v", err)
		}
	}
	page, err := svc.ListKeys(ctx, k.dev.p(t), keyward.KeyQuery{Status: keyward.StatusExpired})
	if err != nil || page.Total != 0 {
		t.Errorf("expired keys after deletion: %v, %v", page, err)
	}
}

func TestRotateKey(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	svc := e.svc
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxKeysPerUser: ptr(2)})
	old, oldSecret := mustKey(t, e, k.dev, keyward.KeyInput{Name: "rotating", Description: "d", Role: keyward.KeyRoleAdmin,
		Scopes: []string{"a", "b"}, Meta: json.RawMessage(`{"env":"prod"}`)})
	mustKey(t, e, k.dev, keyward.KeyInput{Name: "second"}) // the owner is at its maximum
	e.clock.Advance(time.Minute)
	now := e.clock.Now()
	grace := 2 * time.Hour
	nk, secret, err := svc.RotateKey(ctx, k.dev.p(t), old.ID, &grace)
	if err != nil {
		t.Fatalf("RotateKey at the maximum: %v", err)
	}
	e.remember(secret)
	want := &keyward.Key{TenantID: k.a.ID, Name: "rotating", Description: "d", OwnerID: old.OwnerID, Role: keyward.KeyRoleAdmin,
		Scopes: []string{"a", "b"}, Meta: json.RawMessage(`{"env":"prod"}`), Start: keyward.SecretStart(secret),
		CreatedAt: now, UpdatedAt: now, OwnerName: old.OwnerName, OwnerEmail: old.OwnerEmail, Type: keyward.KindUser}
	if diff := cmp.Diff(want, nk, cmpopts.IgnoreFields(keyward.Key{}, "ID", "Hash")); diff != "" {
		t.Errorf("rotated key (-want +got):\n%s", diff)
	}
	if nk.ID == old.ID || secret == oldSecret || !keyward.ParseSecret(secret) {
		t.Errorf("the new key reuses the old ID or secret")
	}
	stored := storedKey(t, e, k.a.ID, old.ID)
	if stored.ExpiresAt == nil || !stored.ExpiresAt.Equal(now.Add(grace)) || !stored.UpdatedAt.Equal(now) {
		t.Errorf("old key expires at %v (updated %v), want now + grace", stored.ExpiresAt, stored.UpdatedAt)
	}
	for _, s := range []string{secret, oldSecret} {
		if v, _ := svc.Verify(ctx, keyward.VerifyInput{Key: s, RequireRole: keyward.KeyRoleAdmin, RequireScopes: []string{"b"}}); v.Code != keyward.CodeValid {
			t.Errorf("during the grace period Verify = %s", v.Code)
		}
	}
	e.clock.Advance(grace)
	if v, _ := svc.Verify(ctx, keyward.VerifyInput{Key: oldSecret}); v.Code != keyward.CodeExpired {
		t.Errorf("after the grace period the old key verifies %s", v.Code)
	}
	if v, _ := svc.Verify(ctx, keyward.VerifyInput{Key: secret}); v.Code != keyward.CodeValid {
		t.Errorf("after the grace period the new key verifies %s", v.Code)
	}
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxKeysPerUser: ptr(1000)})

	t.Run("grace 0 expires at once", func(t *testing.T) {
		key, s := mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: "zero"})
		nk, ns, err := svc.RotateKey(ctx, k.a.Admin.p(t), key.ID, ptr(time.Duration(0)))
		if err != nil {
			t.Fatal(err)
		}
		e.remember(ns)
		if v, _ := svc.Verify(ctx, keyward.VerifyInput{Key: s}); v.Code != keyward.CodeExpired {
			t.Errorf("old key with grace 0 verifies %s", v.Code)
		}
		if st := status(t, e, k.a.ID, key.ID); st != keyward.StatusExpired {
			t.Errorf("old key with grace 0 is %s", st)
		}
		if nk.Status(e.clock.Now()) != keyward.StatusActive {
			t.Errorf("new key is %s", nk.Status(e.clock.Now()))
		}
	})
	t.Run("default grace is a day", func(t *testing.T) {
		key, _ := mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: "default"})
		_, ns, err := svc.RotateKey(ctx, k.a.Admin.p(t), key.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.remember(ns)
		if got := storedKey(t, e, k.a.ID, key.ID).ExpiresAt; got == nil || !got.Equal(e.clock.Now().Add(24*time.Hour)) {
			t.Errorf("old key expires at %v, want in 24h", got)
		}
	})
	t.Run("never lengthens the old key's life", func(t *testing.T) {
		soon := e.clock.Now().Add(time.Hour)
		key, _ := mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: "soon", ExpiresAt: &soon})
		_, ns, err := svc.RotateKey(ctx, k.a.Admin.p(t), key.ID, ptr(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		e.remember(ns)
		if got := storedKey(t, e, k.a.ID, key.ID).ExpiresAt; got == nil || !got.Equal(soon) {
			t.Errorf("old key expires at %v, want still %v", got, soon)
		}
	})
	t.Run("expiry follows max_expiration_days", func(t *testing.T) {
		short, _ := mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: "short", ExpiresAt: ptr(e.clock.Now().Add(time.Hour))})
		nk, ns, err := svc.RotateKey(ctx, k.a.Admin.p(t), short.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.remember(ns)
		if nk.ExpiresAt != nil {
			t.Errorf("without a maximum the new key expires at %v, want never", nk.ExpiresAt)
		}
		mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxExpirationDays: keyward.OptionalInt{Set: true, Value: ptr(10)}})
		nk2, ns, err := svc.RotateKey(ctx, k.a.Admin.p(t), nk.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.remember(ns)
		if want := e.clock.Now().AddDate(0, 0, 10); nk2.ExpiresAt == nil || !nk2.ExpiresAt.Equal(want) {
			t.Errorf("new key expires at %v, want %v", nk2.ExpiresAt, want)
		}
		mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{MaxExpirationDays: keyward.OptionalInt{Set: true}})
	})
	t.Run("system key by an admin", func(t *testing.T) {
		key, _ := mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: "svc", OwnerID: k.system.ID})
		nk, ns, err := svc.RotateKey(ctx, k.a.Admin.p(t), key.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.remember(ns)
		if nk.OwnerID != k.system.ID || nk.Type != keyward.KindSystem {
			t.Errorf("rotated system key owned by %s (%s)", nk.OwnerID, nk.Type)
		}
	})
	t.Run("only an active key rotates", func(t *testing.T) {
		mk := func(name string) *keyward.Key {
			key, _ := mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: name, ExpiresAt: ptr(e.clock.Now().Add(time.Minute))})
			return key
		}
		inactive, revoked, expired := mk("inactive"), mk("revoked"), mk("expired")
		p := k.a.Admin.p(t)
		if _, err := svc.DeactivateKey(ctx, p, inactive.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.RevokeKey(ctx, p, revoked.ID, nil); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		if _, err := svc.ReactivateKey(ctx, p, inactive.ID); err == nil {
			t.Fatal("reactivated an expired key")
		}
		inactive2, _ := mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: "inactive2"})
		if _, err := svc.DeactivateKey(ctx, p, inactive2.ID); err != nil {
			t.Fatal(err)
		}
		for _, key := range []*keyward.Key{inactive2, revoked, expired} {
			e.clock.Advance(time.Second)
			at := e.clock.Now()
			_, s, err := svc.RotateKey(ctx, k.a.Admin.p(t), key.ID, nil)
			wantCode(t, err, keyward.EConflict)
			if s != "" {
				t.Error("a refused rotation returned a secret")
			}
			if evs := eventsSince(t, e, k.a.ID, at); len(evs) != 0 {
				t.Errorf("a refused rotation of the %s key wrote %d events", key.Name, len(evs))
			}
		}
	})
	t.Run("keys off", func(t *testing.T) {
		key, _ := mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: "off"})
		mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(false)})
		_, _, err := svc.RotateKey(ctx, k.a.Admin.p(t), key.ID, nil)
		wantCode(t, err, keyward.EKeysDisabled)
		mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(true)})
	})
	t.Run("grace out of range", func(t *testing.T) {
		key, _ := mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: "g"})
		for _, g := range []time.Duration{-time.Second, 90*24*time.Hour + time.Second} {
			_, _, err := svc.RotateKey(ctx, k.a.Admin.p(t), key.ID, &g)
			wantCode(t, err, keyward.EInvalid)
		}
		if _, ns, err := svc.RotateKey(ctx, k.a.Admin.p(t), key.ID, ptr(90*24*time.Hour)); err != nil {
			t.Errorf("grace of 90 days: %v", err)
		} else {
			e.remember(ns)
		}
	})
}

// TestDeleteKey: a deleted key is gone, whatever its status.
func TestDeleteKey(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	svc := e.svc
	for _, st := range []string{keyward.StatusActive, keyward.StatusInactive, keyward.StatusRevoked, keyward.StatusExpired} {
		t.Run(st, func(t *testing.T) {
			key, secret := mustKey(t, e, k.dev, keyward.KeyInput{Name: st, ExpiresAt: ptr(e.clock.Now().Add(time.Hour))})
			p := k.dev.p(t)
			switch st {
			case keyward.StatusInactive:
				svc.DeactivateKey(ctx, p, key.ID)
			case keyward.StatusRevoked:
				svc.RevokeKey(ctx, p, key.ID, nil)
			case keyward.StatusExpired:
				e.clock.Advance(time.Hour)
			}
			if got := status(t, e, k.a.ID, key.ID); got != st {
				t.Fatalf("prepared a %s key, want %s", got, st)
			}
			if err := svc.DeleteKey(ctx, p, key.ID); err != nil {
				t.Fatalf("DeleteKey: %v", err)
			}
			if v, err := svc.Verify(ctx, keyward.VerifyInput{Key: secret}); err != nil || v.Code != keyward.CodeNotFound || v.Key != nil {
				t.Errorf("Verify after delete = %+v, %v; want NOT_FOUND without a key", v, err)
			}
			_, err := svc.GetKey(ctx, k.a.Admin.p(t), key.ID)
			wantCode(t, err, keyward.ENotFound)
			wantCode(t, svc.DeleteKey(ctx, p, key.ID), keyward.ENotFound)
			_, err = svc.Authenticate(ctx, secret)
			wantCode(t, err, keyward.EUnauthenticated)
			evs := allEvents(t, e, k.a.ID, keyward.EventFilter{Action: keyward.ActionKeyDeleted, KeyID: key.ID})
			if len(evs) != 1 || evs[0].Details["status"] != st {
				t.Errorf("key.deleted events: %d, details %v", len(evs), evs)
			}
		})
	}
}

// TestBulkRevoke covers revocation by ids, by type and of all keys.
func TestBulkRevoke(t *testing.T) {
	ctx := context.Background()
	const notRevocable = "Unable to Revoke API Key"

	t.Run("by ids", func(t *testing.T) {
		k := mustKeysEnv(t)
		e := k.e
		b := mustTenant(t, e, "Globex")
		mk := func(by *caller, in keyward.KeyInput) *keyward.Key { key, _ := mustKey(t, e, by, in); return key }
		d1 := mk(k.dev, keyward.KeyInput{Name: "d1"})
		d2 := mk(k.dev, keyward.KeyInput{Name: "d2"})
		inactive := mk(k.dev, keyward.KeyInput{Name: "inactive"})
		revoked := mk(k.dev, keyward.KeyInput{Name: "revoked"})
		expired := mk(k.dev, keyward.KeyInput{Name: "expired", ExpiresAt: ptr(t0.Add(time.Minute))})
		sys := mk(k.a.Admin, keyward.KeyInput{Name: "sys", OwnerID: k.system.ID})
		adm := mk(k.a.Admin, keyward.KeyInput{Name: "adm"})
		foreign := mk(b.Admin, keyward.KeyInput{Name: "foreign"})
		p := k.dev.p(t)
		if _, err := e.svc.DeactivateKey(ctx, p, inactive.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.RevokeKey(ctx, p, revoked.ID, nil); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)

		// A non-admin revokes only its own keys; others' are not found.
		e.clock.Advance(time.Second)
		at := e.clock.Now()
		res, err := e.svc.BulkRevoke(ctx, k.dev.p(t), keyward.BulkRevokeInput{
			IDs: []string{d1.ID, sys.ID, adm.ID, d1.ID, foreign.ID}, Reason: ptr("mine")})
		if err != nil {
			t.Fatal(err)
		}
		want := &keyward.BulkRevokeResult{Revoked: 1, Failed: []keyward.BulkFailure{
			{ID: sys.ID, Code: keyward.ENotFound, Message: "key not found"},
			{ID: adm.ID, Code: keyward.ENotFound, Message: "key not found"},
			{ID: foreign.ID, Code: keyward.ENotFound, Message: "key not found"},
		}}
		if diff := cmp.Diff(want, res); diff != "" {
			t.Errorf("developer's bulk revoke (-want +got):\n%s", diff)
		}
		for _, key := range []*keyward.Key{sys, adm} {
			if st := status(t, e, k.a.ID, key.ID); st != keyward.StatusActive {
				t.Errorf("%s is %s after another user's bulk revoke", key.Name, st)
			}
		}
		if st := status(t, e, b.ID, foreign.ID); st != keyward.StatusActive {
			t.Errorf("the other tenant's key is %s", st)
		}
		if evs := eventsSince(t, e, k.a.ID, at); len(evs) != 1 || evs[0].Target.ID != d1.ID || evs[0].Action != keyward.ActionKeyRevoked {
			t.Errorf("events of the developer's bulk revoke: %d", len(evs))
		}

		// An admin revokes any key of the tenant; duplicates count once.
		e.clock.Advance(time.Second)
		at = e.clock.Now()
		res, err = e.svc.BulkRevoke(ctx, k.a.Admin.p(t), keyward.BulkRevokeInput{IDs: []string{
			d2.ID, inactive.ID, sys.ID, adm.ID, d2.ID, sys.ID, d1.ID, revoked.ID, expired.ID, "key_unknown", foreign.ID, ""}})
		if err != nil {
			t.Fatal(err)
		}
		want = &keyward.BulkRevokeResult{Revoked: 4, Failed: []keyward.BulkFailure{
			{ID: d1.ID, Code: keyward.ENotRevocable, Message: notRevocable},
			{ID: revoked.ID, Code: keyward.ENotRevocable, Message: notRevocable},
			{ID: expired.ID, Code: keyward.ENotRevocable, Message: notRevocable},
			{ID: "key_unknown", Code: keyward.ENotFound, Message: "key not found"},
			{ID: foreign.ID, Code: keyward.ENotFound, Message: "key not found"},
			{ID: "", Code: keyward.ENotFound, Message: "key not found"},
		}}
		if diff := cmp.Diff(want, res); diff != "" {
			t.Errorf("admin's bulk revoke (-want +got):\n%s", diff)
		}
		evs := eventsSince(t, e, k.a.ID, at)
		targets := map[string]int{}
		for _, ev := range evs {
			if ev.Action != keyward.ActionKeyRevoked || ev.ActorUserID != k.a.Admin.userID {
				t.Errorf("unexpected event %s by %s", ev.Action, ev.ActorUserID)
			}
			targets[ev.Target.ID]++
		}
		if diff := cmp.Diff(map[string]int{d2.ID: 1, inactive.ID: 1, sys.ID: 1, adm.ID: 1}, targets); diff != "" {
			t.Errorf("one event per revoked key (-want +got):\n%s", diff)
		}
		for _, key := range []*keyward.Key{d2, inactive, sys, adm} {
			if st := status(t, e, k.a.ID, key.ID); st != keyward.StatusRevoked {
				t.Errorf("%s is %s", key.Name, st)
			}
		}
		if st := status(t, e, k.a.ID, expired.ID); st != keyward.StatusExpired {
			t.Errorf("the expired key is %s", st)
		}
	})

	t.Run("by type and all", func(t *testing.T) {
		for _, c := range []struct {
			name string
			in   keyward.BulkRevokeInput
			// which keys end revoked
			user, system bool
		}{
			{"type user", keyward.BulkRevokeInput{Type: keyward.KindUser, Reason: ptr("incident")}, true, false},
			{"type system", keyward.BulkRevokeInput{Type: keyward.KindSystem}, false, true},
			{"all", keyward.BulkRevokeInput{All: true}, true, true},
		} {
			t.Run(c.name, func(t *testing.T) {
				k := mustKeysEnv(t)
				e := k.e
				b := mustTenant(t, e, "Globex")
				userKeys := []*keyward.Key{}
				for _, by := range []*caller{k.dev, k.a.Admin} {
					key, _ := mustKey(t, e, by, keyward.KeyInput{Name: "u"})
					userKeys = append(userKeys, key)
				}
				inactive, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "inactive"})
				if _, err := e.svc.DeactivateKey(ctx, k.dev.p(t), inactive.ID); err != nil {
					t.Fatal(err)
				}
				userKeys = append(userKeys, inactive, &keyward.Key{ID: k.a.KeyID, Name: "bootstrap"})
				sysKey, _ := mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: "s", OwnerID: k.system.ID})
				expired, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "expired", ExpiresAt: ptr(t0.Add(time.Minute))})
				foreign, _ := mustKey(t, e, b.Admin, keyward.KeyInput{Name: "foreign"})
				e.clock.Advance(time.Minute)

				// Nobody but an admin revokes by type or all.
				for _, c2 := range []*caller{k.dev, k.plain, mustKeyCaller(t, e, k.a.Admin, "ro", keyward.KeyRoleReadonly)} {
					_, err := e.svc.BulkRevoke(ctx, c2.p(t), c.in)
					wantCode(t, err, keyward.EPermissionDenied)
				}
				wantRevoked := 0
				if c.user {
					wantRevoked += len(userKeys) + 1 // and the readonly key just made
				}
				if c.system {
					wantRevoked++
				}
				e.clock.Advance(time.Second)
				at := e.clock.Now()
				p := k.a.Admin.p(t)
				res, err := e.svc.BulkRevoke(ctx, p, c.in)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(&keyward.BulkRevokeResult{Revoked: wantRevoked, Failed: []keyward.BulkFailure{}}, res); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
				evs := eventsSince(t, e, k.a.ID, at)
				if len(evs) != wantRevoked {
					t.Errorf("%d events for %d revoked keys", len(evs), wantRevoked)
				}
				seenTargets := map[string]bool{}
				for _, ev := range evs {
					if ev.Action != keyward.ActionKeyRevoked || seenTargets[ev.Target.ID] {
						t.Errorf("event %s on %s", ev.Action, ev.Target.ID)
					}
					seenTargets[ev.Target.ID] = true
					if c.in.Reason != nil && ev.Details["reason"] != *c.in.Reason {
						t.Errorf("event details %v lack the reason", ev.Details)
					}
				}
				wantStatus := func(revoked bool, was string) string {
					if revoked {
						return keyward.StatusRevoked
					}
					return was
				}
				for _, key := range userKeys {
					was := keyward.StatusActive
					if key.ID == inactive.ID {
						was = keyward.StatusInactive
					}
					if got, want := status(t, e, k.a.ID, key.ID), wantStatus(c.user, was); got != want {
						t.Errorf("user key %s is %s, want %s", key.Name, got, want)
					}
					if c.user {
						stored := storedKey(t, e, k.a.ID, key.ID)
						if *stored.RevokedBy != k.a.Admin.userID || !stored.RevokedAt.Equal(at) {
							t.Errorf("revoked by %v at %v", *stored.RevokedBy, stored.RevokedAt)
						}
					}
				}
				if got, want := status(t, e, k.a.ID, sysKey.ID), wantStatus(c.system, keyward.StatusActive); got != want {
					t.Errorf("system key is %s, want %s", got, want)
				}
				if got := status(t, e, k.a.ID, expired.ID); got != keyward.StatusExpired {
					t.Errorf("expired key is %s", got)
				}
				if got := status(t, e, b.ID, foreign.ID); got != keyward.StatusActive {
					t.Errorf("other tenant's key is %s", got)
				}
				// A second round finds nothing left.
				res, err = e.svc.BulkRevoke(ctx, k.a.Admin.p(t), c.in)
				if err == nil && res.Revoked != 0 {
					t.Errorf("second round revoked %d", res.Revoked)
				}
			})
		}
	})

	t.Run("input", func(t *testing.T) {
		k := mustKeysEnv(t)
		p := k.a.Admin.p(t)
		many := make([]string, 1001)
		for i := range many {
			many[i] = fmt.Sprintf("key_%d", i)
		}
		for _, c := range []struct {
			name string
			in   keyward.BulkRevokeInput
			want string
		}{
			{"nothing", keyward.BulkRevokeInput{}, keyward.EInvalid},
			{"ids and type", keyward.BulkRevokeInput{IDs: []string{"key_1"}, Type: keyward.KindUser}, keyward.EInvalid},
			{"ids and all", keyward.BulkRevokeInput{IDs: []string{"key_1"}, All: true}, keyward.EInvalid},
			{"type and all", keyward.BulkRevokeInput{Type: keyward.KindSystem, All: true}, keyward.EInvalid},
			{"empty ids", keyward.BulkRevokeInput{IDs: []string{}}, keyward.EInvalid},
			{"1001 ids", keyward.BulkRevokeInput{IDs: many}, keyward.EInvalid},
			{"1000 ids", keyward.BulkRevokeInput{IDs: many[:1000]}, ok},
			{"bad type", keyward.BulkRevokeInput{Type: "robot"}, keyward.EInvalid},
			{"reason too long", keyward.BulkRevokeInput{All: true, Reason: ptr(strings.Repeat("r", 1001))}, keyward.EInvalid},
		} {
			res, err := k.e.svc.BulkRevoke(ctx, p, c.in)
			if keyward.ErrorCode(err) != c.want {
				t.Errorf("%s: %v, want %q", c.name, err, c.want)
			}
			if c.name == "1000 ids" && (res == nil || len(res.Failed) != 1000) {
				t.Errorf("1000 unknown ids: %d failures", len(res.Failed))
			}
		}
	})
}

// TestVerify answers every code of the contract from the store.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	svc := e.svc
	mk := func(in keyward.KeyInput) (*keyward.Key, string) { return mustKey(t, e, k.dev, in) }
	ro, roSecret := mk(keyward.KeyInput{Name: "ro", Scopes: []string{"a", "b"}, Meta: json.RawMessage(`{"x":1}`)})
	adm, admSecret := mk(keyward.KeyInput{Name: "adm", Role: keyward.KeyRoleAdmin})
	inactive, inactiveSecret := mk(keyward.KeyInput{Name: "inactive"})
	revoked, revokedSecret := mk(keyward.KeyInput{Name: "revoked"})
	expired, expiredSecret := mk(keyward.KeyInput{Name: "expired", ExpiresAt: ptr(t0.Add(time.Minute))})
	deleted, deletedSecret := mk(keyward.KeyInput{Name: "deleted"})
	p := k.dev.p(t)
	svc.DeactivateKey(ctx, p, inactive.ID)
	svc.RevokeKey(ctx, p, revoked.ID, nil)
	if err := svc.DeleteKey(ctx, p, deleted.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	unknown := mustSecret(t, "kw")
	_ = deleted
	for _, c := range []struct {
		name    string
		in      keyward.VerifyInput
		want    string
		wantKey *keyward.Key
	}{
		{"valid", keyward.VerifyInput{Key: roSecret}, keyward.CodeValid, ro},
		{"valid with scopes", keyward.VerifyInput{Key: roSecret, RequireScopes: []string{"b", "a"}}, keyward.CodeValid, ro},
		{"valid admin", keyward.VerifyInput{Key: admSecret, RequireRole: keyward.KeyRoleAdmin}, keyward.CodeValid, adm},
		{"readonly required of an admin key", keyward.VerifyInput{Key: admSecret, RequireRole: keyward.KeyRoleReadonly}, keyward.CodeValid, adm},
		{"admin required of a readonly key", keyward.VerifyInput{Key: roSecret, RequireRole: keyward.KeyRoleAdmin}, keyward.CodeForbidden, ro},
		{"scope missing", keyward.VerifyInput{Key: roSecret, RequireScopes: []string{"a", "c"}}, keyward.CodeForbidden, ro},
		{"inactive", keyward.VerifyInput{Key: inactiveSecret}, keyward.CodeInactive, inactive},
		{"revoked", keyward.VerifyInput{Key: revokedSecret}, keyward.CodeRevoked, revoked},
		{"expired", keyward.VerifyInput{Key: expiredSecret}, keyward.CodeExpired, expired},
		{"deleted", keyward.VerifyInput{Key: deletedSecret}, keyward.CodeNotFound, nil},
		{"unknown", keyward.VerifyInput{Key: unknown}, keyward.CodeNotFound, nil},
		{"empty", keyward.VerifyInput{}, keyward.CodeNotFound, nil},
		{"malformed", keyward.VerifyInput{Key: "not a key"}, keyward.CodeNotFound, nil},
		{"bad checksum", keyward.VerifyInput{Key: changeLast(roSecret)}, keyward.CodeNotFound, nil},
		{"session token", keyward.VerifyInput{Key: k.dev.cred}, keyward.CodeNotFound, nil},
		{"with whitespace", keyward.VerifyInput{Key: " " + roSecret}, keyward.CodeNotFound, nil},
	} {
		res, err := svc.Verify(ctx, c.in)
		if err != nil {
			t.Errorf("%s: Verify: %v", c.name, err)
			continue
		}
		if res.Code != c.want || res.Valid() != (c.want == keyward.CodeValid) {
			t.Errorf("%s: code %s (valid %v), want %s", c.name, res.Code, res.Valid(), c.want)
		}
		if c.wantKey == nil {
			if res.Key != nil {
				t.Errorf("%s: answer holds key %s", c.name, res.Key.ID)
			}
		} else if res.Key == nil || res.Key.ID != c.wantKey.ID || res.Key.OwnerID != c.wantKey.OwnerID || res.Key.TenantID != k.a.ID {
			t.Errorf("%s: answer key %+v, want %s", c.name, res.Key, c.wantKey.ID)
		}
	}
	// Only valid verifications count as use.
	if diff := cmp.Diff([]string{ro.ID, ro.ID, adm.ID, adm.ID}, e.usedKeys()); diff != "" {
		t.Errorf("keys reported used (-want +got):\n%s", diff)
	}
	_, err := svc.Verify(ctx, keyward.VerifyInput{Key: roSecret, RequireRole: "owner"})
	wantCode(t, err, keyward.EInvalid)

	// The tenant switch wins over every status.
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(false)})
	for _, s := range []string{roSecret, admSecret, inactiveSecret, revokedSecret, expiredSecret} {
		if res, err := svc.Verify(ctx, keyward.VerifyInput{Key: s, RequireRole: keyward.KeyRoleAdmin}); err != nil || res.Code != keyward.CodeKeysDisabled || res.Key == nil {
			t.Errorf("keys off: %+v, %v; want KEYS_DISABLED with the key", res, err)
		}
	}
	for _, s := range []string{deletedSecret, unknown} {
		if res, _ := svc.Verify(ctx, keyward.VerifyInput{Key: s}); res.Code != keyward.CodeNotFound {
			t.Errorf("keys off, unknown key: %s, want NOT_FOUND", res.Code)
		}
	}
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(true)})
	if res, _ := svc.Verify(ctx, keyward.VerifyInput{Key: roSecret}); res.Code != keyward.CodeValid {
		t.Errorf("keys back on: %s", res.Code)
	}
	// Keys of another tenant with the switch off are not affected.
	b := mustTenant(t, e, "Globex")
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{APIKeysEnabled: ptr(false)})
	if res, _ := svc.Verify(ctx, keyward.VerifyInput{Key: b.AdminKey.cred}); res.Code != keyward.CodeValid {
		t.Errorf("another tenant's key with this tenant's keys off: %s", res.Code)
	}
}

// TestKeyPrefixChange: new keys take the new prefix; old keys keep working.
func TestKeyPrefixChange(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	_, old := mustKey(t, e, k.dev, keyward.KeyInput{Name: "old"})
	mustSettings(t, e, k.a.Admin, keyward.SettingsPatch{KeyPrefix: ptr("acme2")})
	key, secret := mustKey(t, e, k.dev, keyward.KeyInput{Name: "new"})
	if !strings.HasPrefix(secret, "acme2_") || !strings.HasPrefix(key.Start, "acme2_") || len(key.Start) != len("acme2_")+keyward.SecretStartLen {
		t.Errorf("secret %.8s…, start %q; want the new prefix", secret, key.Start)
	}
	for _, s := range []string{old, secret} {
		if res, _ := e.svc.Verify(ctx, keyward.VerifyInput{Key: s}); res.Code != keyward.CodeValid {
			t.Errorf("Verify(%.8s…) = %s", s, res.Code)
		}
	}
}

// TestUpdateKey renames keys and checks the fields.
func TestUpdateKey(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	key, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "before", Description: "d"})
	e.clock.Advance(time.Minute)
	got, err := e.svc.UpdateKey(ctx, k.dev.p(t), key.ID, keyward.KeyPatch{Name: ptr("  after ")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "after" || got.Description != "d" || !got.UpdatedAt.Equal(e.clock.Now()) || !got.CreatedAt.Equal(t0) {
		t.Errorf("after rename: name %q desc %q updated %v created %v", got.Name, got.Description, got.UpdatedAt, got.CreatedAt)
	}
	for _, patch := range []keyward.KeyPatch{
		{Name: ptr("")}, {Name: ptr(" ")}, {Name: ptr(strings.Repeat("x", 256))}, {Description: ptr(strings.Repeat("x", 2001))},
		{Name: ptr("tab\x00")},
	} {
		_, err := e.svc.UpdateKey(ctx, k.dev.p(t), key.ID, patch)
		wantCode(t, err, keyward.EInvalid)
	}
	if n := storedKey(t, e, k.a.ID, key.ID).Name; n != "after" {
		t.Errorf("name %q after refused patches", n)
	}
}

// TestListKeysQuery checks the query rules the service owns: bounds, the
// status filter at the service clock, and non-admins held to their own keys.
func TestListKeysQuery(t *testing.T) {
	ctx := context.Background()
	k := mustKeysEnv(t)
	e := k.e
	p := k.a.Admin.p(t)
	for _, q := range []keyward.KeyQuery{
		{PageSize: 201}, {PageSize: -1}, {Type: "robot"}, {Status: "dead"}, {Sort: "secret"}, {Sort: "--name"},
		{Q: strings.Repeat("q", 256)}, {PageToken: "garbage"},
	} {
		_, err := e.svc.ListKeys(ctx, p, q)
		if keyward.ErrorCode(err) != keyward.EInvalid {
			t.Errorf("ListKeys(%+v): %v, want %s", q, err, keyward.EInvalid)
		}
	}
	for _, col := range keyward.KeySortColumns {
		for _, s := range []string{col, "-" + col} {
			if _, err := e.svc.ListKeys(ctx, p, keyward.KeyQuery{Sort: s}); err != nil {
				t.Errorf("sort %s: %v", s, err)
			}
		}
	}
	if _, err := e.svc.ListKeys(ctx, p, keyward.KeyQuery{PageSize: 200}); err != nil {
		t.Errorf("page_size 200: %v", err)
	}
	soon, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "soon", ExpiresAt: ptr(t0.Add(time.Hour))})
	e.clock.Advance(time.Second)
	later, _ := mustKey(t, e, k.dev, keyward.KeyInput{Name: "later"})
	mustKey(t, e, k.a.Admin, keyward.KeyInput{Name: "admin's"})
	ids := func(q keyward.KeyQuery, by *caller) []string {
		t.Helper()
		page, err := e.svc.ListKeys(ctx, by.p(t), q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, key := range page.Keys {
			out = append(out, key.ID)
		}
		return out
	}
	// Default order is newest first.
	if diff := cmp.Diff([]string{later.ID, soon.ID}, ids(keyward.KeyQuery{}, k.dev)); diff != "" {
		t.Errorf("a developer's keys, newest first (-want +got):\n%s", diff)
	}
	// A non-admin asking for another owner's keys gets none.
	if got := ids(keyward.KeyQuery{OwnerID: k.a.Admin.userID}, k.dev); len(got) != 0 {
		t.Errorf("a developer listing the admin's keys sees %v", got)
	}
	e.clock.Advance(time.Hour)
	if diff := cmp.Diff([]string{soon.ID}, ids(keyward.KeyQuery{Status: keyward.StatusExpired}, k.dev)); diff != "" {
		t.Errorf("expired keys at the service clock (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{later.ID}, ids(keyward.KeyQuery{Status: keyward.StatusActive}, k.dev)); diff != "" {
		t.Errorf("active keys at the service clock (-want +got):\n%s", diff)
	}
}

// On the real clock (the coarse one Verify reads when no clock is
// injected), a key rotated with no grace is refused by the very next
// verification, every time: near a key's expiry the exact clock decides.
func TestRotationWithoutGraceOnTheRealClock(t *testing.T) {
	ctx := context.Background()
	h, err := keyward.NewHasher(testPepper)
	if err != nil {
		t.Fatal(err)
	}
	params := cheap
	svc := keyward.NewService(mustStore(t), h, keyward.Options{PasswordParams: &params})
	res, err := svc.Bootstrap(ctx, keyward.BootstrapInput{Tenant: "Acme", Email: "admin@acme.example"})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := svc.Authenticate(ctx, res.Secret)
	if err != nil {
		t.Fatal(err)
	}
	zero := time.Duration(0)
	k, secret, err := svc.CreateKey(ctx, admin, keyward.KeyInput{Name: "rotated"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if r, err := svc.Verify(ctx, keyward.VerifyInput{Key: secret}); err != nil || r.Code != keyward.CodeValid {
			t.Fatalf("rotation %d: the current key: %s, %v", i, r.Code, err)
		}
		next, nextSecret, err := svc.RotateKey(ctx, admin, k.ID, &zero)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := svc.Verify(ctx, keyward.VerifyInput{Key: secret}); err != nil || r.Code != keyward.CodeExpired {
			t.Fatalf("rotation %d: the old key right after a rotation with no grace: %s, %v; want EXPIRED", i, r.Code, err)
		}
		k, secret = next, nextSecret
	}
}
