package keyward_test

// Per-key rate limits: stored on create and PATCH (null clears), copied on
// rotation, and enforced by Verify with the fake clock deciding the windows.

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testclock"
)

// verification is one call of Options.OnVerify.
type verification struct {
	KeyID string
	Code  string
	At    time.Time
}

// verifyLog records Options.OnVerify.
type verifyLog struct {
	mu  sync.Mutex
	got []verification
}

func (l *verifyLog) onVerify(k *keyward.Key, code string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, verification{KeyID: k.ID, Code: code, At: at})
}

// codes are the codes recorded for one key, in order.
func (l *verifyLog) codes(keyID string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, v := range l.got {
		if v.KeyID == keyID {
			out = append(out, v.Code)
		}
	}
	return out
}

// mustServiceWith is mustService with Options edited before the service is built
// (OnUse and OnChange record as in mustService unless edit replaces them).
func mustServiceWith(tb testing.TB, edit func(o *keyward.Options, e *env)) *env {
	tb.Helper()
	e := &env{db: mustStore(tb), clock: testclock.New(t0)}
	h, err := keyward.NewHasher(testPepper)
	if err != nil {
		tb.Fatalf("NewHasher: %v", err)
	}
	params := cheap
	o := keyward.Options{
		Now:            e.clock.Now,
		PasswordParams: &params,
		OnUse: func(id string, _ time.Time) {
			e.mu.Lock()
			e.used = append(e.used, id)
			e.mu.Unlock()
		},
		OnChange: func(c keyward.Change) {
			e.mu.Lock()
			e.changes = append(e.changes, c)
			e.mu.Unlock()
		},
	}
	edit(&o, e)
	e.svc = keyward.NewService(e.db, h, o)
	return e
}

// rateEnv is a tenant with a developer, a plain user and a system user, on a
// service whose verifications are recorded.
type rateEnv struct {
	*keysEnv
	log *verifyLog
}

func mustRateEnv(tb testing.TB) *rateEnv {
	tb.Helper()
	log := &verifyLog{}
	e := mustServiceWith(tb, func(o *keyward.Options, _ *env) { o.OnVerify = log.onVerify })
	a := mustTenant(tb, e, "Acme")
	mustSettings(tb, e, a.Admin, keyward.SettingsPatch{MaxKeysPerUser: ptr(1000), MaxKeysPerServiceUser: ptr(1000)})
	return &rateEnv{log: log, keysEnv: &keysEnv{e: e, a: a,
		dev:    mustPerson(tb, e, a.Admin, "dev@acme.example", true, keyward.RoleDeveloper),
		plain:  mustPerson(tb, e, a.Admin, "plain@acme.example", true),
		system: mustUser(tb, e, a.Admin, keyward.UserInput{Email: "svc@acme.example", Name: "Svc", Kind: keyward.KindSystem}),
	}}
}

func rl(limit, window int) *keyward.RateLimit {
	return &keyward.RateLimit{Limit: limit, WindowSeconds: window}
}

func wantRateLimit(tb testing.TB, what string, got, want *keyward.RateLimit) {
	tb.Helper()
	switch {
	case want == nil && got != nil:
		tb.Errorf("%s: rate limit %+v, want none", what, *got)
	case want != nil && (got == nil || *got != *want):
		tb.Errorf("%s: rate limit %v, want %+v", what, got, *want)
	}
}

// verifyCode verifies secret and returns the code; a found key must come back.
func verifyCode(tb testing.TB, e *env, secret string, in keyward.VerifyInput) string {
	tb.Helper()
	in.Key = secret
	res, err := e.svc.Verify(context.Background(), in)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	if res.Code != keyward.CodeNotFound && res.Key == nil {
		tb.Errorf("Verify %s without the key", res.Code)
	}
	if res.Valid() != (res.Code == keyward.CodeValid) {
		tb.Errorf("Verify %s: Valid() = %v", res.Code, res.Valid())
	}
	return res.Code
}

func TestRateLimitStored(t *testing.T) {
	ctx := context.Background()
	r := mustRateEnv(t)
	e := r.e

	limited, _ := mustKey(t, e, r.dev, keyward.KeyInput{Name: "limited", RateLimit: rl(5, 60)})
	wantRateLimit(t, "CreateKey's answer", limited.RateLimit, rl(5, 60))
	got, err := e.svc.GetKey(ctx, r.dev.p(t), limited.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantRateLimit(t, "GetKey", got.RateLimit, rl(5, 60))
	plain, _ := mustKey(t, e, r.dev, keyward.KeyInput{Name: "unlimited"})
	wantRateLimit(t, "a key created without one", plain.RateLimit, nil)
	sys, _ := mustKey(t, e, r.a.Admin, keyward.KeyInput{Name: "service", OwnerID: r.system.ID, RateLimit: rl(1000, 86400)})
	wantRateLimit(t, "a system user's key", storedKey(t, e, r.a.ID, sys.ID).RateLimit, rl(1000, 86400))

	page, err := e.svc.ListKeys(ctx, r.a.Admin.p(t), keyward.KeyQuery{})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]*keyward.RateLimit{}
	for _, k := range page.Keys {
		listed[k.ID] = k.RateLimit
	}
	wantRateLimit(t, "listed limited key", listed[limited.ID], rl(5, 60))
	wantRateLimit(t, "listed unlimited key", listed[plain.ID], nil)

	// PATCH: set, change, leave alone, clear.
	steps := []struct {
		name    string
		patch   keyward.KeyPatch
		want    *keyward.RateLimit
		details map[string]any // of the key.updated event
	}{
		{"set", keyward.KeyPatch{RateLimit: keyward.OptionalRateLimit{Set: true, Value: rl(10, 3600)}}, rl(10, 3600),
			map[string]any{"rate_limit": map[string]any{"from": nil, "to": map[string]any{"limit": 10, "window_seconds": 3600}}}},
		{"change", keyward.KeyPatch{RateLimit: keyward.OptionalRateLimit{Set: true, Value: rl(20, 3600)}}, rl(20, 3600),
			map[string]any{"rate_limit": map[string]any{"from": map[string]any{"limit": 10, "window_seconds": 3600},
				"to": map[string]any{"limit": 20, "window_seconds": 3600}}}},
		{"same again", keyward.KeyPatch{RateLimit: keyward.OptionalRateLimit{Set: true, Value: rl(20, 3600)}}, rl(20, 3600),
			map[string]any{}},
		{"rename only", keyward.KeyPatch{Name: ptr("renamed")}, rl(20, 3600),
			map[string]any{"name": map[string]any{"from": "unlimited", "to": "renamed"}}},
		{"null clears", keyward.KeyPatch{RateLimit: keyward.OptionalRateLimit{Set: true}}, nil,
			map[string]any{"rate_limit": map[string]any{"from": map[string]any{"limit": 20, "window_seconds": 3600}, "to": nil}}},
		{"null again", keyward.KeyPatch{RateLimit: keyward.OptionalRateLimit{Set: true}}, nil, map[string]any{}},
	}
	for _, step := range steps {
		e.clock.Advance(time.Second)
		since := e.clock.Now()
		got, err := e.svc.UpdateKey(ctx, r.dev.p(t), plain.ID, step.patch)
		if err != nil {
			t.Fatalf("%s: UpdateKey: %v", step.name, err)
		}
		wantRateLimit(t, step.name+": UpdateKey's answer", got.RateLimit, step.want)
		wantRateLimit(t, step.name+": stored", storedKey(t, e, r.a.ID, plain.ID).RateLimit, step.want)
		events := eventsSince(t, e, r.a.ID, since)
		if diff := diffEvents(t, []seenEvent{{Action: keyward.ActionKeyUpdated,
			Actor:       keyward.Ref{Type: keyward.ActorUser, ID: got.OwnerID, Name: got.OwnerName},
			Target:      keyward.Ref{Type: keyward.TargetKey, ID: plain.ID, Name: got.Name},
			ActorUserID: got.OwnerID, TargetOwnerID: got.OwnerID, Details: step.details}}, events); diff != "" {
			t.Errorf("%s: events (-want +got):\n%s", step.name, diff)
		}
	}
	// The other keys were not touched.
	wantRateLimit(t, "the limited key after the other's patches", storedKey(t, e, r.a.ID, limited.ID).RateLimit, rl(5, 60))

	// An administrator may limit any key; a plain user cannot see the developer's.
	if _, err := e.svc.UpdateKey(ctx, r.a.Admin.p(t), limited.ID,
		keyward.KeyPatch{RateLimit: keyward.OptionalRateLimit{Set: true, Value: rl(1, 1)}}); err != nil {
		t.Fatalf("admin UpdateKey: %v", err)
	}
	wantRateLimit(t, "after the admin's patch", storedKey(t, e, r.a.ID, limited.ID).RateLimit, rl(1, 1))
	_, err = e.svc.UpdateKey(ctx, r.plain.p(t), limited.ID, keyward.KeyPatch{RateLimit: keyward.OptionalRateLimit{Set: true}})
	wantCode(t, err, keyward.ENotFound)
	wantRateLimit(t, "after a stranger's patch", storedKey(t, e, r.a.ID, limited.ID).RateLimit, rl(1, 1))
}

func TestRateLimitBounds(t *testing.T) {
	ctx := context.Background()
	r := mustRateEnv(t)
	e := r.e
	target, _ := mustKey(t, e, r.dev, keyward.KeyInput{Name: "target", RateLimit: rl(7, 70)})
	for _, tc := range []struct {
		limit *keyward.RateLimit
		ok    bool
	}{
		{rl(1, 1), true},
		{rl(1_000_000_000, 86400), true},
		{rl(100, 60), true},
		{rl(0, 60), false},
		{rl(-1, 60), false},
		{rl(1_000_000_001, 60), false},
		{rl(100, 0), false},
		{rl(100, -60), false},
		{rl(100, 86401), false},
		{rl(0, 0), false},
		{&keyward.RateLimit{}, false},
	} {
		k, secret, err := e.svc.CreateKey(ctx, r.dev.p(t), keyward.KeyInput{Name: "bounds", RateLimit: tc.limit})
		_, perr := e.svc.UpdateKey(ctx, r.dev.p(t), target.ID, keyward.KeyPatch{
			RateLimit: keyward.OptionalRateLimit{Set: true, Value: tc.limit}})
		if tc.ok {
			if err != nil || perr != nil {
				t.Errorf("%+v: create %v, patch %v; want both accepted", *tc.limit, err, perr)
				continue
			}
			e.remember(secret)
			wantRateLimit(t, "created at a bound", storedKey(t, e, r.a.ID, k.ID).RateLimit, tc.limit)
			wantRateLimit(t, "patched to a bound", storedKey(t, e, r.a.ID, target.ID).RateLimit, tc.limit)
			continue
		}
		wantCode(t, err, keyward.EInvalid)
		wantCode(t, perr, keyward.EInvalid)
	}
	// Refused patches left the last accepted limit; refused creates made no key.
	wantRateLimit(t, "after refused patches", storedKey(t, e, r.a.ID, target.ID).RateLimit, rl(100, 60))
	page, err := e.svc.ListKeys(ctx, r.dev.p(t), keyward.KeyQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 4 {
		t.Errorf("the developer has %d keys, want 4 (target and the three accepted)", page.Total)
	}
	// A refused rate limit refuses the whole patch: the name is not changed either.
	_, err = e.svc.UpdateKey(ctx, r.dev.p(t), target.ID, keyward.KeyPatch{Name: ptr("renamed"),
		RateLimit: keyward.OptionalRateLimit{Set: true, Value: rl(0, 1)}})
	wantCode(t, err, keyward.EInvalid)
	if n := storedKey(t, e, r.a.ID, target.ID).Name; n != "target" {
		t.Errorf("a refused patch renamed the key to %q", n)
	}
}

func TestRateLimitCopiedOnRotation(t *testing.T) {
	ctx := context.Background()
	r := mustRateEnv(t)
	e := r.e
	for _, limit := range []*keyward.RateLimit{rl(3, 60), nil} {
		old, _ := mustKey(t, e, r.dev, keyward.KeyInput{Name: "rotating", RateLimit: limit})
		nk, secret, err := e.svc.RotateKey(ctx, r.dev.p(t), old.ID, nil)
		if err != nil {
			t.Fatalf("RotateKey: %v", err)
		}
		e.remember(secret)
		wantRateLimit(t, "RotateKey's answer", nk.RateLimit, limit)
		wantRateLimit(t, "the new key stored", storedKey(t, e, r.a.ID, nk.ID).RateLimit, limit)
		if limit == nil {
			continue
		}
		// The new key is limited as the old one was, from its own first use.
		for i := range 3 {
			if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeValid {
				t.Fatalf("rotated key, use %d: %s", i+1, c)
			}
		}
		if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeRateLimited {
			t.Errorf("rotated key, use 4: %s, want RATE_LIMITED", c)
		}
	}
}

func TestVerifyRateLimited(t *testing.T) {
	r := mustRateEnv(t)
	e := r.e
	key, secret := mustKey(t, e, r.dev, keyward.KeyInput{Name: "limited", RateLimit: rl(3, 60)})
	_, other := mustKey(t, e, r.dev, keyward.KeyInput{Name: "other", RateLimit: rl(3, 60)})
	start := e.clock.Now()

	var want []string
	check := func(step, code string) {
		t.Helper()
		if got := verifyCode(t, e, secret, keyward.VerifyInput{}); got != code {
			t.Fatalf("%s: %s, want %s", step, got, code)
		}
		want = append(want, code)
	}
	for i := range 3 {
		e.clock.Advance(time.Second)
		check("use "+string(rune('1'+i)), keyward.CodeValid)
	}
	check("4th use in the window", keyward.CodeRateLimited)
	// The answer names the key and says it is not valid.
	res, err := e.svc.Verify(context.Background(), keyward.VerifyInput{Key: secret})
	if err != nil || res.Code != keyward.CodeRateLimited || res.Valid() || res.Key == nil || res.Key.ID != key.ID {
		t.Fatalf("5th use: %+v, %v; want RATE_LIMITED naming the key", res, err)
	}
	want = append(want, keyward.CodeRateLimited)
	// Another key's limit is its own.
	if c := verifyCode(t, e, other, keyward.VerifyInput{}); c != keyward.CodeValid {
		t.Errorf("another limited key: %s, want VALID", c)
	}

	// The window started at the first use: still closed just before it ends.
	e.clock.Advance(start.Add(time.Second + 60*time.Second - time.Microsecond).Sub(e.clock.Now()))
	check("last moment of the window", keyward.CodeRateLimited)
	e.clock.Advance(time.Microsecond)
	for i := range 3 {
		check("next window, use "+string(rune('1'+i)), keyward.CodeValid)
	}
	check("next window, 4th use", keyward.CodeRateLimited)

	if diff := slices.Compare(r.log.codes(key.ID), want); diff != 0 {
		t.Errorf("OnVerify saw %v, want %v", r.log.codes(key.ID), want)
	}
	// Only VALID answers are uses (OnVerify notes them; keyward.Options):
	// six of them. With OnVerify set, verifications do not go to OnUse too.
	valid := 0
	for _, c := range r.log.codes(key.ID) {
		if c == keyward.CodeValid {
			valid++
		}
	}
	if valid != 6 {
		t.Errorf("OnVerify told of %d VALID verifications of the limited key, want 6 (RATE_LIMITED is not a use)", valid)
	}
	if slices.Contains(e.usedKeys(), key.ID) {
		t.Errorf("OnUse told of a verification although OnVerify is set: %v", e.usedKeys())
	}
}

func TestVerifyWithoutLimitIsNeverRateLimited(t *testing.T) {
	r := mustRateEnv(t)
	e := r.e
	key, secret := mustKey(t, e, r.dev, keyward.KeyInput{Name: "unlimited"})
	for i := range 500 {
		if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeValid {
			t.Fatalf("use %d: %s", i+1, c)
		}
	}
	if got := len(r.log.codes(key.ID)); got != 500 {
		t.Errorf("OnVerify told of %d verifications, want 500", got)
	}
}

// TestOnlyValidVerificationsSpendTheLimit: a refusal for another reason says
// that reason and leaves the allowance alone.
func TestOnlyValidVerificationsSpendTheLimit(t *testing.T) {
	ctx := context.Background()
	r := mustRateEnv(t)
	e := r.e
	key, secret := mustKey(t, e, r.dev, keyward.KeyInput{Name: "readonly", Role: keyward.KeyRoleReadonly, RateLimit: rl(2, 3600)})
	for range 5 {
		if c := verifyCode(t, e, secret, keyward.VerifyInput{RequireRole: keyward.KeyRoleAdmin}); c != keyward.CodeForbidden {
			t.Fatalf("admin required of a readonly key: %s, want FORBIDDEN", c)
		}
	}
	if _, err := e.svc.DeactivateKey(ctx, r.dev.p(t), key.ID); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeInactive {
			t.Fatalf("inactive key: %s, want INACTIVE", c)
		}
	}
	if _, err := e.svc.ReactivateKey(ctx, r.dev.p(t), key.ID); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeValid {
			t.Fatalf("use %d after refusals: %s, want VALID", i+1, c)
		}
	}
	if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeRateLimited {
		t.Errorf("3rd valid use: %s, want RATE_LIMITED", c)
	}
	// A limited key that is also refused for another reason says that reason.
	if c := verifyCode(t, e, secret, keyward.VerifyInput{RequireRole: keyward.KeyRoleAdmin}); c != keyward.CodeForbidden {
		t.Errorf("over its limit and short of the role: %s, want FORBIDDEN", c)
	}
	if _, err := e.svc.RevokeKey(ctx, r.dev.p(t), key.ID, nil); err != nil {
		t.Fatal(err)
	}
	if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeRevoked {
		t.Errorf("over its limit and revoked: %s, want REVOKED", c)
	}
}

func TestRateLimitChangesTakeEffectAtOnce(t *testing.T) {
	ctx := context.Background()
	r := mustRateEnv(t)
	e := r.e
	key, secret := mustKey(t, e, r.dev, keyward.KeyInput{Name: "k", RateLimit: rl(1, 3600)})
	if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeValid {
		t.Fatalf("first use: %s", c)
	}
	if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeRateLimited {
		t.Fatalf("second use: %s, want RATE_LIMITED", c)
	}
	patch := func(v *keyward.RateLimit) {
		t.Helper()
		if _, err := e.svc.UpdateKey(ctx, r.dev.p(t), key.ID, keyward.KeyPatch{RateLimit: keyward.OptionalRateLimit{Set: true, Value: v}}); err != nil {
			t.Fatalf("UpdateKey: %v", err)
		}
	}
	// Cleared: no limit at all.
	patch(nil)
	for i := range 20 {
		if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeValid {
			t.Fatalf("use %d after the limit was lifted: %s", i+1, c)
		}
	}
	// Limited again: the new limit applies on the very next verification.
	patch(rl(2, 3600))
	verifyCode(t, e, secret, keyward.VerifyInput{})
	verifyCode(t, e, secret, keyward.VerifyInput{})
	if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeRateLimited {
		t.Errorf("after a new limit of 2: %s, want RATE_LIMITED", c)
	}
}

// limiterCall is one call of a RateLimiter.
type limiterCall struct {
	KeyID  string
	Limit  int
	Window time.Duration
	Now    time.Time
}

// scriptedLimiter allows what allow says and records its calls.
type scriptedLimiter struct {
	mu    sync.Mutex
	calls []limiterCall
	allow bool
}

func (l *scriptedLimiter) Allow(id string, limit int, window time.Duration, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, limiterCall{id, limit, window, now})
	return l.allow
}

// TestRateLimiterOption: Options.RateLimiter is asked with the key's limit at
// the service clock, and only for valid keys that have a limit.
func TestRateLimiterOption(t *testing.T) {
	lim := &scriptedLimiter{allow: true}
	e := mustServiceWith(t, func(o *keyward.Options, _ *env) { o.RateLimiter = lim })
	a := mustTenant(t, e, "Acme")
	dev := mustPerson(t, e, a.Admin, "dev@acme.example", true, keyward.RoleDeveloper)
	key, secret := mustKey(t, e, dev, keyward.KeyInput{Name: "k", RateLimit: rl(42, 90)})
	_, free := mustKey(t, e, dev, keyward.KeyInput{Name: "free"})
	e.clock.Advance(1500 * time.Millisecond)

	if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeValid {
		t.Fatalf("allowed: %s", c)
	}
	lim.mu.Lock()
	lim.allow = false
	lim.mu.Unlock()
	if c := verifyCode(t, e, secret, keyward.VerifyInput{}); c != keyward.CodeRateLimited {
		t.Fatalf("refused by the limiter: %s", c)
	}
	verifyCode(t, e, free, keyward.VerifyInput{})
	verifyCode(t, e, secret, keyward.VerifyInput{RequireScopes: []string{"missing"}})

	want := limiterCall{KeyID: key.ID, Limit: 42, Window: 90 * time.Second, Now: e.clock.Now()}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if len(lim.calls) != 2 || lim.calls[0] != want || lim.calls[1] != want {
		t.Errorf("limiter calls %+v, want twice %+v", lim.calls, want)
	}
}
