package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// verifyFixture adds keys in every state to the matrix fixture.
type verifyFixture struct {
	*fixture
	valid, readonly, inactive, revoked, expired, inactiveExpired, revokedExpired, deleted issued
	disabled                                                                              issued // of tenant B, whose keys are off

	mu   sync.Mutex
	used []string // key IDs the service reported as used
}

func newVerifyFixture(t *testing.T, o envOptions) *verifyFixture {
	t.Helper()
	v := &verifyFixture{}
	o.onUse = func(id string, _ time.Time) {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.used = append(v.used, id)
	}
	v.fixture = newFixture(t, o)
	ctx := context.Background()
	dev := v.principal(t, v.dev.Token)
	now := v.clock.Now()
	soon := now.Add(time.Hour)
	key := func(name, role string, scopes []string, expires *time.Time) issued {
		return v.issue(t, dev, keyward.KeyInput{Name: name, Role: role, Scopes: scopes, Meta: json.RawMessage(`{"team":"billing"}`), ExpiresAt: expires})
	}
	v.valid = key("valid", keyward.KeyRoleAdmin, []string{"invoices:read", "invoices:write"}, nil)
	v.readonly = key("readonly", keyward.KeyRoleReadonly, []string{"invoices:read"}, nil)
	v.inactive = key("inactive", keyward.KeyRoleAdmin, nil, nil)
	v.revoked = key("revoked", keyward.KeyRoleAdmin, nil, nil)
	v.expired = key("expired", keyward.KeyRoleAdmin, nil, &soon)
	v.inactiveExpired = key("inactive, then expired", keyward.KeyRoleAdmin, nil, &soon)
	v.revokedExpired = key("revoked, then expired", keyward.KeyRoleAdmin, nil, &soon)
	v.deleted = key("deleted", keyward.KeyRoleAdmin, nil, nil)
	for _, id := range []string{v.inactive.ID, v.inactiveExpired.ID} {
		if _, err := v.svc.DeactivateKey(ctx, dev, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{v.revoked.ID, v.revokedExpired.ID} {
		if _, err := v.svc.RevokeKey(ctx, dev, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.svc.DeleteKey(ctx, dev, v.deleted.ID); err != nil {
		t.Fatal(err)
	}
	v.disabled = v.otherKey
	v.mustSettings(t, v.principal(t, v.rootB), keyward.SettingsPatch{APIKeysEnabled: ptr(false)})
	v.clock.Advance(2 * time.Hour)
	v.mu.Lock()
	v.used = nil
	v.mu.Unlock()
	return v
}

func (v *verifyFixture) takeUsed() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	u := v.used
	v.used = nil
	return u
}

// badChecksum changes the last character of a secret: the same shape, a
// checksum that no longer matches.
func badChecksum(secret string) string {
	last := secret[len(secret)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'B'
	}
	return secret[:len(secret)-1] + string(repl)
}

// unknownSecret has the shape and a valid checksum of a secret, but was never issued.
func unknownSecret(t *testing.T) string {
	t.Helper()
	s, err := keyward.NewSecret(strings.NewReader(strings.Repeat("x", 64)), "kw")
	if err != nil {
		t.Fatal(err)
	}
	if !keyward.ParseSecret(s) {
		t.Fatalf("NewSecret made %q, which ParseSecret refuses", s)
	}
	return s
}

// TestVerify checks every answer of POST /v1/keys/verify.
func TestVerify(t *testing.T) {
	v := newVerifyFixture(t, envOptions{network: true})
	cases := []struct {
		name  string
		body  any
		code  string
		keyID string // the key the answer shows; "" for none
	}{
		{"valid", map[string]any{"key": v.valid.Secret}, keyward.CodeValid, v.valid.ID},
		{"valid with role and scopes", map[string]any{"key": v.valid.Secret, "require_role": "admin",
			"require_scopes": []string{"invoices:write", "invoices:read"}}, keyward.CodeValid, v.valid.ID},
		{"readonly key, readonly required", map[string]any{"key": v.readonly.Secret, "require_role": "readonly"}, keyward.CodeValid, v.readonly.ID},
		{"admin key, readonly required", map[string]any{"key": v.valid.Secret, "require_role": "readonly"}, keyward.CodeValid, v.valid.ID},
		{"empty scopes required", map[string]any{"key": v.readonly.Secret, "require_scopes": []string{}}, keyward.CodeValid, v.readonly.ID},
		{"unknown", map[string]any{"key": unknownSecret(t)}, keyward.CodeNotFound, ""},
		{"malformed", map[string]any{"key": "hello"}, keyward.CodeNotFound, ""},
		{"bad checksum", map[string]any{"key": badChecksum(v.valid.Secret)}, keyward.CodeNotFound, ""},
		{"other prefix", map[string]any{"key": "zz" + strings.TrimPrefix(v.valid.Secret, "kw")}, keyward.CodeNotFound, ""},
		{"trailing space", map[string]any{"key": v.valid.Secret + " "}, keyward.CodeNotFound, ""},
		{"too long", map[string]any{"key": v.valid.Secret + strings.Repeat("x", 500)}, keyward.CodeNotFound, ""},
		{"session token", map[string]any{"key": v.dev.Token}, keyward.CodeNotFound, ""},
		{"deleted", map[string]any{"key": v.deleted.Secret}, keyward.CodeNotFound, ""},
		{"empty", map[string]any{"key": ""}, keyward.CodeNotFound, ""},
		{"missing", map[string]any{}, keyward.CodeNotFound, ""},
		{"inactive", map[string]any{"key": v.inactive.Secret}, keyward.CodeInactive, v.inactive.ID},
		{"revoked", map[string]any{"key": v.revoked.Secret}, keyward.CodeRevoked, v.revoked.ID},
		{"expired", map[string]any{"key": v.expired.Secret}, keyward.CodeExpired, v.expired.ID},
		{"inactive, then expired", map[string]any{"key": v.inactiveExpired.Secret}, keyward.CodeExpired, v.inactiveExpired.ID},
		{"revoked, then expired", map[string]any{"key": v.revokedExpired.Secret}, keyward.CodeRevoked, v.revokedExpired.ID},
		{"tenant keys off", map[string]any{"key": v.disabled.Secret}, keyward.CodeKeysDisabled, v.disabled.ID},
		{"tenant keys off wins over requirements", map[string]any{"key": v.disabled.Secret, "require_role": "admin",
			"require_scopes": []string{"nope"}}, keyward.CodeKeysDisabled, v.disabled.ID},
		{"role short", map[string]any{"key": v.readonly.Secret, "require_role": "admin"}, keyward.CodeForbidden, v.readonly.ID},
		{"one scope short", map[string]any{"key": v.readonly.Secret, "require_scopes": []string{"invoices:read", "invoices:write"}},
			keyward.CodeForbidden, v.readonly.ID},
		{"scope of another case", map[string]any{"key": v.valid.Secret, "require_scopes": []string{"INVOICES:READ"}},
			keyward.CodeForbidden, v.valid.ID},
		{"revoked beats forbidden", map[string]any{"key": v.revoked.Secret, "require_role": "admin", "require_scopes": []string{"x"}},
			keyward.CodeRevoked, v.revoked.ID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := v.send(t, req{method: "POST", path: "/v1/keys/verify", body: c.body})
			if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("verify: %s", r)
			}
			var raw map[string]json.RawMessage
			r.decode(t, &raw)
			var got struct {
				Valid bool   `json:"valid"`
				Code  string `json:"code"`
				Key   *struct {
					ID        string          `json:"id"`
					TenantID  string          `json:"tenant_id"`
					Name      string          `json:"name"`
					OwnerID   string          `json:"owner_id"`
					Type      string          `json:"type"`
					Role      string          `json:"role"`
					Scopes    []string        `json:"scopes"`
					Meta      json.RawMessage `json:"meta"`
					ExpiresAt *time.Time      `json:"expires_at"`
				} `json:"key"`
			}
			r.decode(t, &got)
			if got.Code != c.code || got.Valid != (c.code == keyward.CodeValid) {
				t.Errorf("answer %s, want code %s", r.Body, c.code)
			}
			_, hasKey := raw["key"]
			if c.keyID == "" {
				if hasKey {
					t.Errorf("a %s answer shows a key: %s", c.code, r.Body)
				}
				return
			}
			if got.Key == nil || got.Key.ID != c.keyID {
				t.Fatalf("answer %s, want key %s", r.Body, c.keyID)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(raw["key"], &fields); err != nil {
				t.Fatal(err)
			}
			var names []string
			for k := range fields {
				names = append(names, k)
			}
			slices.Sort(names)
			if want := []string{"expires_at", "id", "meta", "name", "owner_id", "role", "scopes", "tenant_id", "type"}; !slices.Equal(names, want) {
				t.Errorf("the key of a verification answer has fields %v, want %v", names, want)
			}
			if c.keyID == v.valid.ID && (got.Key.TenantID != v.tenantA || got.Key.OwnerID != v.dev.ID || got.Key.Type != "user" ||
				got.Key.Role != "admin" || !slices.Equal(got.Key.Scopes, []string{"invoices:read", "invoices:write"}) ||
				string(got.Key.Meta) != `{"team":"billing"}` || got.Key.ExpiresAt != nil || got.Key.Name != "valid") {
				t.Errorf("valid key shown as %+v", got.Key)
			}
		})
	}

	// A key's own rate limit: within it VALID, beyond it RATE_LIMITED, about
	// the key (so the key is shown), and not a use of it.
	limited := v.issue(t, v.principal(t, v.dev.Token), keyward.KeyInput{Name: "limited",
		RateLimit: &keyward.RateLimit{Limit: 2, WindowSeconds: 3600}})
	v.takeUsed()
	for i, want := range []string{keyward.CodeValid, keyward.CodeValid, keyward.CodeRateLimited, keyward.CodeRateLimited} {
		r := v.send(t, req{method: "POST", path: "/v1/keys/verify", body: map[string]string{"key": limited.Secret}})
		var got struct {
			Valid bool   `json:"valid"`
			Code  string `json:"code"`
			Key   *struct {
				ID string `json:"id"`
			} `json:"key"`
		}
		r.decode(t, &got)
		if r.Status != http.StatusOK || got.Code != want || got.Valid != (want == keyward.CodeValid) || got.Key == nil || got.Key.ID != limited.ID {
			t.Errorf("verification %d of a key limited to 2 an hour: %s, want %s with the key", i+1, r, want)
		}
	}
	if used := v.takeUsed(); len(used) != 2 {
		t.Errorf("a rate-limited key reported %d uses, want 2", len(used))
	}

	// Only a valid verification counts as a use of the key.
	v.takeUsed()
	for _, c := range cases {
		v.send(t, req{method: "POST", path: "/v1/keys/verify", body: c.body})
		used := v.takeUsed()
		if c.code == keyward.CodeValid && !slices.Equal(used, []string{c.keyID}) || c.code != keyward.CodeValid && len(used) != 0 {
			t.Errorf("%s: uses reported %v", c.name, used)
		}
	}
}

// TestVerifyFailureLimit: more failures than the limit from one address get
// 429 with Retry-After, but never lock out a valid key or another address.
func TestVerifyFailureLimit(t *testing.T) {
	v := newVerifyFixture(t, envOptions{verifyFailureLimit: 5})
	const attacker, other = "203.0.113.7:40000", "198.51.100.9:1234"
	verify := func(addr, key string) reply {
		return v.send(t, req{method: "POST", path: "/v1/keys/verify", body: map[string]string{"key": key}, remoteAddr: addr})
	}
	code := func(r reply) string {
		var out struct{ Code string }
		r.decode(t, &out)
		return out.Code
	}
	failures := []string{unknownSecret(t), "garbage", v.revoked.Secret, v.inactive.Secret, badChecksum(v.valid.Secret)}
	for i, key := range failures {
		if r := verify(attacker, key); r.Status != http.StatusOK || code(r) == keyward.CodeValid {
			t.Fatalf("failure %d: %s", i+1, r)
		}
	}
	for _, addr := range []string{attacker, "203.0.113.7:40001"} { // the port does not matter
		r := verify(addr, unknownSecret(t))
		checkProblem(t, r, http.StatusTooManyRequests, keyward.ETooManyRequests)
		if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
			t.Errorf("Retry-After %q, want 1..60 seconds", r.Header.Get("Retry-After"))
		}
		if valid, ok := r.object(t)["valid"]; !ok || valid != false {
			t.Errorf("a throttled answer must say valid: false: %s", r.Body)
		}
	}
	// A valid key from the same address still works, and a forbidden one is throttled.
	if r := verify(attacker, v.valid.Secret); r.Status != http.StatusOK || code(r) != keyward.CodeValid {
		t.Errorf("a valid key from a throttled address: %s", r)
	}
	if r := verify(attacker, v.revoked.Secret); r.Status != http.StatusTooManyRequests {
		t.Errorf("a revoked key from a throttled address: %s", r)
	}
	// Forward authentication shares the limit.
	fa := func(addr, key string) reply {
		return v.send(t, req{method: "GET", path: "/v1/auth", bearer: key, remoteAddr: addr})
	}
	if r := fa(attacker, v.revoked.Secret); r.Status != http.StatusTooManyRequests || r.Header.Get("X-Keyward-Code") != keyward.CodeRateLimited ||
		r.Header.Get("Retry-After") == "" {
		t.Errorf("forward auth with a bad key from a throttled address: %s %v", r, r.Header)
	}
	if r := fa(attacker, v.valid.Secret); r.Status != http.StatusOK {
		t.Errorf("forward auth with a valid key from a throttled address: %s", r)
	}
	// A working key short of a scope is not a guessed key: it is answered
	// FORBIDDEN even from a throttled address, and never counts as a failure.
	forbidden := func(addr string) reply {
		return v.send(t, req{method: "POST", path: "/v1/keys/verify", remoteAddr: addr,
			body: map[string]any{"key": v.valid.Secret, "require_scopes": []string{"no-such-scope"}}})
	}
	if r := forbidden(attacker); r.Status != http.StatusOK || code(r) != keyward.CodeForbidden {
		t.Errorf("a valid key short of a scope from a throttled address: %s", r)
	}
	const busy = "192.0.2.44:5000"
	for i := 0; i < 8; i++ {
		if r := forbidden(busy); r.Status != http.StatusOK || code(r) != keyward.CodeForbidden {
			t.Fatalf("FORBIDDEN answer %d counted against the address: %s", i+1, r)
		}
	}
	// Other addresses are not affected.
	for _, addr := range []string{other, "[2001:db8::1]:443"} {
		if r := verify(addr, unknownSecret(t)); r.Status != http.StatusOK || code(r) != keyward.CodeNotFound {
			t.Errorf("another address %s: %s", addr, r)
		}
		if r := fa(addr, v.revoked.Secret); r.Status != http.StatusUnauthorized {
			t.Errorf("forward auth from another address %s: %s", addr, r)
		}
	}
}

// TestForwardAuth checks /v1/auth with every method.
func TestForwardAuth(t *testing.T) {
	v := newVerifyFixture(t, envOptions{network: true})
	type answer struct {
		status int
		code   string // X-Keyward-Code of a refusal
		key    issued // the key a 200 names
	}
	cases := []struct {
		name   string
		query  string
		bearer string
		apiKey string
		header http.Header
		want   answer
	}{
		{name: "bearer", bearer: v.valid.Secret, want: answer{status: 200, key: v.valid}},
		{name: "X-API-Key", apiKey: v.valid.Secret, want: answer{status: 200, key: v.valid}},
		{name: "readonly key", bearer: v.readonly.Secret, want: answer{status: 200, key: v.readonly}},
		{name: "role and scopes met", query: "?require_role=admin&require_scopes=invoices:read,%20invoices:write",
			bearer: v.valid.Secret, want: answer{status: 200, key: v.valid}},
		{name: "lower-case scheme", header: http.Header{"Authorization": {"bearer " + v.valid.Secret}}, want: answer{status: 200, key: v.valid}},
		{name: "X-API-Key next to Basic auth for the upstream", header: http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}},
			apiKey: v.valid.Secret, want: answer{status: 200, key: v.valid}},
		{name: "missing", want: answer{status: 401, code: keyward.CodeNotFound}},
		{name: "unknown", bearer: unknownSecret(t), want: answer{status: 401, code: keyward.CodeNotFound}},
		{name: "session token", bearer: v.dev.Token, want: answer{status: 401, code: keyward.CodeNotFound}},
		{name: "not a bearer", header: http.Header{"Authorization": {"Basic " + v.valid.Secret}}, want: answer{status: 401, code: keyward.CodeNotFound}},
		{name: "revoked", bearer: v.revoked.Secret, want: answer{status: 401, code: keyward.CodeRevoked}},
		{name: "inactive", apiKey: v.inactive.Secret, want: answer{status: 401, code: keyward.CodeInactive}},
		{name: "expired", bearer: v.expired.Secret, want: answer{status: 401, code: keyward.CodeExpired}},
		{name: "deleted", bearer: v.deleted.Secret, want: answer{status: 401, code: keyward.CodeNotFound}},
		{name: "tenant keys off", bearer: v.disabled.Secret, want: answer{status: 401, code: keyward.CodeKeysDisabled}},
		{name: "role short", query: "?require_role=admin", bearer: v.readonly.Secret, want: answer{status: 403, code: keyward.CodeForbidden}},
		{name: "scopes short", query: "?require_scopes=invoices:read,invoices:delete", bearer: v.valid.Secret,
			want: answer{status: 403, code: keyward.CodeForbidden}},
		{name: "key in the query string", query: "?key=" + v.valid.Secret + "&api_key=" + v.valid.Secret + "&access_token=" + v.valid.Secret,
			want: answer{status: 401, code: keyward.CodeNotFound}},
	}
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"} {
		for _, c := range cases {
			t.Run(m+" "+c.name, func(t *testing.T) {
				r := v.send(t, req{method: m, path: "/v1/auth" + c.query, bearer: c.bearer, apiKey: c.apiKey, header: c.header})
				h := r.Header
				if r.Status != c.want.status || len(r.Body) != 0 {
					t.Fatalf("%s, want %d and no body", r, c.want.status)
				}
				if c.want.status == http.StatusOK {
					k, err := v.svc.GetKey(context.Background(), v.principal(t, v.rootA), c.want.key.ID)
					if err != nil {
						t.Fatal(err)
					}
					got := []string{h.Get("X-Keyward-Key-Id"), h.Get("X-Keyward-Tenant-Id"), h.Get("X-Keyward-Owner-Id"),
						h.Get("X-Keyward-Key-Role"), h.Get("X-Keyward-Key-Scopes"), h.Get("X-Keyward-Code")}
					want := []string{k.ID, k.TenantID, k.OwnerID, k.Role, strings.Join(k.Scopes, ","), ""}
					if !slices.Equal(got, want) {
						t.Errorf("headers %q, want %q", got, want)
					}
					return
				}
				if h.Get("X-Keyward-Code") != c.want.code || h.Get("X-Keyward-Key-Id") != "" {
					t.Errorf("X-Keyward-Code %q (key %q), want %q", h.Get("X-Keyward-Code"), h.Get("X-Keyward-Key-Id"), c.want.code)
				}
				if c.want.status == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without WWW-Authenticate: Bearer")
				}
			})
		}
	}
	// A key over its own rate limit: 429 RATE_LIMITED.
	limited := v.issue(t, v.principal(t, v.dev.Token), keyward.KeyInput{Name: "limited",
		RateLimit: &keyward.RateLimit{Limit: 1, WindowSeconds: 3600}})
	for i, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		r := v.send(t, req{method: "GET", path: "/v1/auth", apiKey: limited.Secret})
		code := ""
		if want != http.StatusOK {
			code = keyward.CodeRateLimited
		}
		if r.Status != want || r.Header.Get("X-Keyward-Code") != code || want != http.StatusOK && r.Header.Get("Retry-After") == "" {
			t.Errorf("forward auth %d with a key limited to 1 an hour: %s (X-Keyward-Code %q, Retry-After %q), want %d %s",
				i+1, r, r.Header.Get("X-Keyward-Code"), r.Header.Get("Retry-After"), want, code)
		}
	}

	// An impossible requirement is the gateway's mistake: 400, a problem document.
	checkProblem(t, v.send(t, req{method: "GET", path: "/v1/auth?require_role=root", bearer: v.valid.Secret}),
		http.StatusBadRequest, keyward.EInvalid)
}
