package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/api"
)

// Seeds in testdata/fuzz/FuzzX hold bodies that do not depend on a fixture;
// each Fuzz function adds seeds with the fixture's real IDs and secrets.

// fuzzRoute checks body against route's JSON decoder (fuzzDecode), then sends
// it to the real handler (fuzzBody), which must agree with the decoder: a
// body the decoder refuses gets that very problem (status, code and detail),
// one it takes is never refused as too large. bearer must be a session that
// may call the route, so that the handler gets as far as decoding.
func fuzzRoute(t *testing.T, e *env, route, path, bearer string, body []byte) reply {
	t.Helper()
	derr := fuzzDecode(t, route, body)
	method, _, _ := strings.Cut(route, " ")
	got := fuzzBody(t, e, method, path, bearer, body, bodyOptional[route])
	switch {
	case derr != nil:
		var p problem
		json.Unmarshal(got.Body, &p)
		want := problem{Code: keyward.ErrorCode(derr), Detail: keyward.ErrorMessage(derr)}
		if p.Code != want.Code || p.Detail != want.Detail {
			t.Fatalf("body %q: the decoder refuses it with %s %q, the handler answers %s", body, want.Code, want.Detail, got)
		}
	case got.Status == http.StatusRequestEntityTooLarge:
		t.Fatalf("body %q of %d bytes: the decoder takes it, the handler answers %s", body, len(body), got)
	}
	return got
}

// bodyOptional lists the routes that take an empty body (JSON whitespace only).
var bodyOptional = map[string]bool{"POST /v1/keys/{id}/revoke": true, "POST /v1/keys/{id}/rotate": true}

// nullable lists, for each PATCH route, the members that may be null; any
// other member given as null must be refused, not taken as "left out".
var nullable = map[string][]string{
	"PATCH /v1/settings":   {"max_expiration_days"},
	"PATCH /v1/keys/{id}":  {"rate_limit"},
	"PATCH /v1/users/{id}": {},
}

// fuzzDecode runs route's decoder on body and checks what must hold for any
// body: no panic; a refusal is payload_too_large exactly when the body is
// over api.MaxBodyBytes, and invalid_argument otherwise; what is taken
// encodes back to JSON that decodes again, to the same encoding (a round
// trip with nothing lost or made up); and on a PATCH route, no member the
// route does not allow to be null was null. It returns the decoder's error.
func fuzzDecode(t *testing.T, route string, body []byte) error {
	t.Helper()
	v, err := api.DecodeRequest(route, body)
	if err != nil {
		want := keyward.EInvalid
		if len(body) > api.MaxBodyBytes {
			want = keyward.EPayloadTooLarge
		}
		if got := keyward.ErrorCode(err); got != want || keyward.ErrorMessage(err) == "" {
			t.Fatalf("%s: body %q of %d bytes: refused with %v, want code %s", route, body, len(body), err, want)
		}
		return err
	}
	if len(body) > api.MaxBodyBytes {
		t.Fatalf("%s: body of %d bytes taken", route, len(body))
	}
	enc, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: body %q: decoded %+v does not encode: %v", route, body, v, err)
	}
	again, err := api.DecodeRequest(route, enc)
	if err != nil {
		t.Fatalf("%s: body %q decodes to %s, which the decoder refuses: %v", route, body, enc, err)
	}
	if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
		t.Fatalf("%s: body %q decodes to %s, which decodes to %s", route, body, enc, enc2)
	}
	if allowed, ok := nullable[route]; ok {
		for name, value := range members(body) {
			if string(value) == "null" && !slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(a, name) }) {
				t.Fatalf("%s: body %q with %s null is taken as %s", route, body, name, enc)
			}
		}
	}
	return nil
}

// members yields every top-level member of a JSON object, duplicates
// included, in order.
func members(body []byte) func(yield func(string, json.RawMessage) bool) {
	return func(yield func(string, json.RawMessage) bool) {
		dec := json.NewDecoder(bytes.NewReader(body))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return
			}
			name, _ := tok.(string)
			var value json.RawMessage
			if dec.Decode(&value) != nil || !yield(name, value) {
				return
			}
		}
	}
}

// fuzzBody sends body to the route through the real handler and checks what
// any body must get: never a 5xx (a recovered panic is a 500), JSON back
// (problem+json for an error, with a contract code), a 2xx only for a body
// that is a JSON object (or empty, where the body is optional), and an
// answer the OpenAPI document allows.
func fuzzBody(t *testing.T, e *env, method, path, bearer string, body []byte, optional bool) reply {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, r)
	resp := rec.Result()
	out := rec.Body.Bytes()
	if resp.StatusCode >= 500 {
		t.Fatalf("body %q: %d %s\nserver log:\n%s", body, resp.StatusCode, out, tail(e.logs.String(), 4000))
	}
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode < 300 {
		if empty := len(bytes.Trim(body, " \t\r\n")) == 0; !(optional && empty) {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
				t.Fatalf("body %q is not a JSON object (%v), yet the answer is %d %s", body, err, resp.StatusCode, out)
			}
		}
		if ct != "application/json" || !json.Valid(out) {
			t.Fatalf("body %q: %d with Content-Type %q and body %q", body, resp.StatusCode, ct, out)
		}
	} else {
		var p problem
		if ct != "application/problem+json" || json.Unmarshal(out, &p) != nil || p.Status != resp.StatusCode || p.Code == "" {
			t.Fatalf("body %q: %d with Content-Type %q and body %q, want a problem document", body, resp.StatusCode, ct, out)
		}
	}
	mustValidator(t).Check(t, r, resp, out)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: out}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// fuzzFixture is the matrix fixture served without a network, with no
// failure limit in the way of the fuzzer.
func fuzzFixture(f *testing.F) *fixture {
	return newFixture(f, envOptions{verifyFailureLimit: 1 << 30})
}

func FuzzCreateKeyBody(f *testing.F) {
	fx := fuzzFixture(f)
	for _, s := range []string{
		`{"name":"ci","owner_id":"` + fx.systemID + `","role":"admin","scopes":["a:b"]}`,
		`{"name":"mine","owner_id":"` + fx.adminDev.ID + `"}`,
		`{"name":"theirs","owner_id":"` + fx.dev.ID + `"}`,
		`{"name":"other tenant","owner_id":"` + fx.otherAdmin.ID + `"}`,
	} {
		f.Add([]byte(s))
	}
	// The admin (and developer) creates keys for itself and the system user.
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRoute(t, fx.env, "POST /v1/keys", "/v1/keys", fx.adminDev.Token, body)
	})
}

func FuzzBulkRevokeBody(f *testing.F) {
	fx := fuzzFixture(f)
	for _, s := range []string{
		`{"ids":["` + fx.devRO.ID + `","` + fx.sysKey.ID + `"],"reason":"leak"}`,
		`{"ids":["` + fx.otherKey.ID + `"]}`,
		`{"ids":["` + fx.plainKey.ID + `","` + fx.plainKey.ID + `"]}`,
	} {
		f.Add([]byte(s))
	}
	// A session, so that revoking everything leaves the caller able to go on.
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRoute(t, fx.env, "POST /v1/keys/revoke", "/v1/keys/revoke", fx.adminDev.Token, body)
	})
}

func FuzzSettingsBody(f *testing.F) {
	fx := fuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRoute(t, fx.env, "PATCH /v1/settings", "/v1/settings", fx.admin.Token, body)
	})
}

func FuzzVerifyBody(f *testing.F) {
	fx := fuzzFixture(f)
	// A revoked key's secret, for the fuzzer to start from.
	p := fx.principal(f, fx.dev.Token)
	k, secret := fx.mustKey(f, p, keyward.KeyInput{Name: "to revoke", Scopes: []string{"a", "b"}})
	if _, err := fx.svc.RevokeKey(f.Context(), p, k.ID, nil); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"key":"` + fx.devRO.Secret + `"}`,
		`{"key":"` + fx.devAdmin.Secret + `","require_role":"admin","require_scopes":["a:read"]}`,
		`{"key":"` + fx.sysKey.Secret + `","require_scopes":["nope"]}`,
		`{"key":"` + secret + `"}`,
		`{"key":"` + strings.ToUpper(fx.devRO.Secret) + `"}`,
		`{"key":"` + fx.dev.Token + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRoute(t, fx.env, "POST /v1/keys/verify", "/v1/keys/verify", "", body)
	})
}

func FuzzLoginBody(f *testing.F) {
	fx := fuzzFixture(f)
	for _, s := range []string{
		`{"email":"` + fx.dev.Email + `","password":"` + testPassword + `"}`,
		`{"email":"` + fx.dev.Email + `","password":"` + testPassword + `","tenant_id":"` + fx.tenantA + `"}`,
		`{"email":"` + fx.dev.Email + `","password":"` + testPassword + `","tenant_id":"` + fx.tenantB + `"}`,
		`{"email":"` + strings.ToUpper(fx.dev.Email) + `","password":"` + testPassword + `"}`,
		`{"email":"` + fx.dev.Email + `","password":"wrong"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRoute(t, fx.env, "POST /v1/sessions", "/v1/sessions", "", body)
	})
}

func FuzzCreateUserBody(f *testing.F) {
	fx := fuzzFixture(f)
	f.Add([]byte(`{"email":"` + fx.dev.Email + `","name":"Dana again"}`))
	// A tenant admin creates people and system users of its own tenant.
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRoute(t, fx.env, "POST /v1/users", "/v1/users", fx.admin.Token, body)
	})
}

func FuzzUpdateUserBody(f *testing.F) {
	fx := fuzzFixture(f)
	// The admin changes the developer, so that no body can take the
	// caller's own rights away.
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRoute(t, fx.env, "PATCH /v1/users/{id}", "/v1/users/"+fx.dev.ID, fx.admin.Token, body)
	})
}

func FuzzUpdateKeyBody(f *testing.F) {
	fx := fuzzFixture(f)
	// The developer renames its own key.
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRoute(t, fx.env, "PATCH /v1/keys/{id}", "/v1/keys/"+fx.devRO.ID, fx.dev.Token, body)
	})
}

// freshKey issues the developer a key for one fuzz input and deletes it
// (and any key the input made of it) afterwards, so that the developer
// never reaches the maximum number of keys.
func freshKey(t *testing.T, fx *fixture) (id string, cleanup func(more ...string)) {
	p := fx.principal(t, fx.dev.Token)
	k, _ := fx.mustKey(t, p, keyward.KeyInput{Name: "fuzzed", Scopes: []string{"a:read"}})
	return k.ID, func(more ...string) {
		for _, id := range append([]string{k.ID}, more...) {
			if err := fx.svc.DeleteKey(t.Context(), p, id); err != nil {
				t.Fatalf("delete key %s: %v", id, err)
			}
		}
	}
}

func FuzzRevokeKeyBody(f *testing.F) {
	fx := fuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		id, cleanup := freshKey(t, fx)
		fuzzRoute(t, fx.env, "POST /v1/keys/{id}/revoke", "/v1/keys/"+id+"/revoke", fx.dev.Token, body)
		cleanup()
	})
}

func FuzzRotateKeyBody(f *testing.F) {
	fx := fuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		id, cleanup := freshKey(t, fx)
		r := fuzzRoute(t, fx.env, "POST /v1/keys/{id}/rotate", "/v1/keys/"+id+"/rotate", fx.dev.Token, body)
		var rotated []string
		if r.Status == http.StatusCreated {
			var k struct {
				ID string `json:"id"`
			}
			r.decode(t, &k)
			rotated = append(rotated, k.ID)
		}
		cleanup(rotated...)
	})
}

// TestFuzzSeedsHaveTheirStatus pins what some seeds must answer, so that the
// fuzz targets are known to reach the handlers' success paths.
func TestFuzzSeedsHaveTheirStatus(t *testing.T) {
	fx := newFixture(t, envOptions{})
	for _, c := range []struct {
		method, path, bearer, body string
		status                     int
	}{
		{"POST", "/v1/keys", fx.adminDev.Token, `{"name":"ci","owner_id":"` + fx.systemID + `"}`, http.StatusCreated},
		{"POST", "/v1/keys/revoke", fx.adminDev.Token, `{"ids":["` + fx.devRO.ID + `"]}`, http.StatusOK},
		{"PATCH", "/v1/settings", fx.admin.Token, `{"expiry_notice_days":0}`, http.StatusOK},
		{"POST", "/v1/keys/verify", "", `{"key":"` + fx.devAdmin.Secret + `"}`, http.StatusOK},
		{"POST", "/v1/sessions", "", `{"email":"` + fx.dev.Email + `","password":"` + testPassword + `"}`, http.StatusCreated},
		{"POST", "/v1/users", fx.admin.Token, `{"email":"new@acme.test","name":"New","roles":["developer"],"password":"long enough password"}`, http.StatusCreated},
		{"POST", "/v1/users", fx.admin.Token, `{"email":"batch@acme.test","name":"Batch","kind":"system"}`, http.StatusCreated},
		{"PATCH", "/v1/users/" + fx.dev.ID, fx.admin.Token, `{"name":"Dana","roles":["developer"],"licensed":true}`, http.StatusOK},
		{"PATCH", "/v1/keys/" + fx.devAdmin.ID, fx.dev.Token, `{"name":"renamed","description":"","rate_limit":{"limit":5,"window_seconds":60}}`, http.StatusOK},
		{"PATCH", "/v1/keys/" + fx.devAdmin.ID, fx.dev.Token, `{"rate_limit":null}`, http.StatusOK},
		{"POST", "/v1/keys/" + fx.devAdmin.ID + "/rotate", fx.dev.Token, `{"grace_period_seconds":0}`, http.StatusCreated},
		{"POST", "/v1/keys/" + fx.sysKey.ID + "/revoke", fx.admin.Token, `{"reason":"leak"}`, http.StatusOK},
		{"POST", "/v1/keys/" + fx.bootAID + "/revoke", fx.adminDev.Token, ``, http.StatusOK},
	} {
		r := fx.send(t, req{method: c.method, path: c.path, bearer: c.bearer, body: c.body})
		if r.Status != c.status {
			t.Errorf("%s %s %s: %s, want %d", c.method, c.path, c.body, r, c.status)
		}
	}
}
