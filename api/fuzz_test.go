package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// Seeds in testdata/fuzz/FuzzX hold bodies that do not depend on a fixture;
// each Fuzz function adds seeds with the fixture's real IDs and secrets.

// fuzzBody sends body to the route through the real handler and checks what
// any body must get: never a 5xx (a recovered panic is a 500), JSON back
// (problem+json for an error, with a contract code), a 2xx only for a body
// that is a JSON object, and an answer the OpenAPI document allows.
func fuzzBody(t *testing.T, e *env, method, path, bearer string, body []byte) {
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
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
			t.Fatalf("body %q is not a JSON object (%v), yet the answer is %d %s", body, err, resp.StatusCode, out)
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
		fuzzBody(t, fx.env, "POST", "/v1/keys", fx.adminDev.Token, body)
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
		fuzzBody(t, fx.env, "POST", "/v1/keys/revoke", fx.adminDev.Token, body)
	})
}

func FuzzSettingsBody(f *testing.F) {
	fx := fuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, fx.env, "PATCH", "/v1/settings", fx.admin.Token, body)
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
		fuzzBody(t, fx.env, "POST", "/v1/keys/verify", "", body)
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
	} {
		r := fx.send(t, req{method: c.method, path: c.path, bearer: c.bearer, body: c.body})
		if r.Status != c.status {
			t.Errorf("%s %s %s: %s, want %d", c.method, c.path, c.body, r, c.status)
		}
	}
}
