package openapitest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// recorder is a testing.TB that records failures instead of failing, so that
// the tests can assert that the validator does fail.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	failures []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) { r.add(fmt.Sprintf(format, args...)) }
func (r *recorder) Error(args ...any)                 { r.add(fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) { r.add(fmt.Sprintf(format, args...)) }
func (r *recorder) Fatal(args ...any)                 { r.add(fmt.Sprint(args...)) }

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failures) > 0
}

func (r *recorder) add(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, msg)
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.failures, "\n")
}

func mustReadDocument(tb testing.TB) []byte {
	tb.Helper()
	doc, err := os.ReadFile("../openapi.json")
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

var (
	validatorOnce sync.Once
	validator     *Validator
)

// mustValidator loads the document once for all tests; New itself is tested
// by TestDocumentIsValidOpenAPI31.
func mustValidator(tb testing.TB) *Validator {
	tb.Helper()
	validatorOnce.Do(func() { validator = New(tb, mustReadDocument(tb)) })
	if validator == nil {
		tb.Fatal("no validator")
	}
	return validator
}

// exchange is one recorded request and response.
type exchange struct {
	method, target string
	status         int
	header         map[string]string
	body           string
}

func (e exchange) String() string { return fmt.Sprintf("%s %s → %d", e.method, e.target, e.status) }

func (e exchange) check(v *Validator, tb testing.TB) {
	tb.Helper()
	rec := httptest.NewRecorder()
	for k, val := range e.header {
		rec.Header().Set(k, val)
	}
	rec.WriteHeader(e.status)
	io.WriteString(rec, e.body)
	req := httptest.NewRequest(e.method, e.target, nil)
	v.Check(tb, req, rec.Result(), rec.Body.Bytes())
}

const (
	jsonCT    = "application/json"
	problemCT = "application/problem+json"
)

func jsonResp(status int, body string) (int, map[string]string, string) {
	return status, map[string]string{"Content-Type": jsonCT}, body
}

// recordedKey is a Key as the server writes it.
const recordedKey = `{"id":"key_2Nf6Gh8JkL0mP4qR7sT9vX","tenant_id":"ten_4Jd8Qm2LxZ0aB7cR9eT1uW",` +
	`"name":"billing sync","description":"","owner_id":"usr_7Hk2Pq9WnB3xY5zA1cD0eF","owner_name":"Ada Lovelace",` +
	`"owner_email":"ada@example.com","type":"user","role":"readonly","scopes":["invoices:read"],` +
	`"meta":{"team":"billing"},"status":"active","start":"kw_Ab3d","created_at":"2026-11-22T10:00:00Z",` +
	`"updated_at":"2026-11-22T10:00:00.123456789Z","expires_at":null,"last_used_at":null,` +
	`"revoked_at":null,"revoked_by":null,"revoke_reason":null,"rate_limit":null}`

// key is recordedKey as a map, changed by edit.
func key(edit func(map[string]any)) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(recordedKey), &m); err != nil {
		panic(err)
	}
	if edit != nil {
		edit(m)
	}
	return m
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func problem(status int, code string) string {
	return js(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status,
		"detail": "something " + code, "code": code})
}

var (
	user = map[string]any{"id": "usr_7Hk2Pq9WnB3xY5zA1cD0eF", "tenant_id": "ten_4Jd8Qm2LxZ0aB7cR9eT1uW",
		"email": "ada@example.com", "name": "Ada Lovelace", "kind": "user", "roles": []string{"tenant_admin", "developer"},
		"licensed": true, "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z"}
	settings = map[string]any{"api_keys_enabled": true, "max_expiration_days": nil, "max_keys_per_user": 5,
		"max_keys_per_service_user": 10, "expiry_notice_days": 14, "key_prefix": "kw"}
	event = map[string]any{"id": "evt_9Zy8Xw7Vu6Ts5Rq4Po3Nm2", "time": "2026-11-22T10:00:00Z",
		"tenant_id": "ten_4Jd8Qm2LxZ0aB7cR9eT1uW", "action": "key.revoked",
		"actor":  map[string]any{"type": "user", "id": "usr_7Hk2Pq9WnB3xY5zA1cD0eF", "name": "Ada Lovelace"},
		"target": map[string]any{"type": "key", "id": "key_2Nf6Gh8JkL0mP4qR7sT9vX", "name": "billing sync"},
		"ip":     "192.0.2.1", "user_agent": "curl/8.0", "details": map[string]any{"reason": "leaked"}}
	verifiedKey = map[string]any{"id": "key_2Nf6Gh8JkL0mP4qR7sT9vX", "tenant_id": "ten_4Jd8Qm2LxZ0aB7cR9eT1uW",
		"name": "billing sync", "owner_id": "usr_7Hk2Pq9WnB3xY5zA1cD0eF", "type": "user", "role": "admin",
		"scopes": []string{"a", "b"}, "meta": map[string]any{}, "expires_at": "2027-01-01T00:00:00Z"}
	authOK = map[string]string{
		"X-Keyward-Key-Id": "key_2Nf6Gh8JkL0mP4qR7sT9vX", "X-Keyward-Tenant-Id": "ten_4Jd8Qm2LxZ0aB7cR9eT1uW",
		"X-Keyward-Owner-Id": "usr_7Hk2Pq9WnB3xY5zA1cD0eF", "X-Keyward-Key-Role": "admin", "X-Keyward-Key-Scopes": "a,b"}
)

func with(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == deleted {
			delete(out, k)
			continue
		}
		out[k] = kv[i+1]
	}
	return out
}

var deleted = new(int)

func headers(base map[string]string, kv ...string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func ex(method, target string, status int, header map[string]string, body string) exchange {
	return exchange{method: method, target: target, status: status, header: header, body: body}
}

func jx(method, target string, status int, body string) exchange {
	return ex(method, target, status, map[string]string{"Content-Type": jsonCT}, body)
}

func px(method, target string, status int, code string) exchange {
	h := map[string]string{"Content-Type": problemCT}
	switch status {
	case 401:
		h["WWW-Authenticate"] = `Bearer realm="keyward"`
	case 429:
		h["Retry-After"] = "30"
	}
	return ex(method, target, status, h, problem(status, code))
}

func list(name string, items ...any) string {
	if items == nil {
		items = []any{}
	}
	return js(map[string]any{name: items, "next_page_token": nil, "total": len(items)})
}

// TestGoodExchangesPass: responses that keep the contract pass.
func TestGoodExchangesPass(t *testing.T) {
	v := mustValidator(t)
	me := map[string]any{"user": user, "tenant": map[string]any{"id": "ten_4Jd8Qm2LxZ0aB7cR9eT1uW", "name": "Acme"}}
	revokedKey := key(func(m map[string]any) {
		m["status"] = "revoked"
		m["revoked_at"] = "2026-11-23T08:00:00Z"
		m["revoked_by"] = "usr_7Hk2Pq9WnB3xY5zA1cD0eF"
		m["revoke_reason"] = "leaked"
		m["last_used_at"] = "2026-11-22T11:00:00.5Z"
		m["expires_at"] = "2027-11-22T10:00:00+00:00"
		m["usage_count"] = 7 // the server may add fields
	})
	for _, e := range []exchange{
		jx("GET", "/v1/keys/key_2Nf6Gh8JkL0mP4qR7sT9vX", 200, recordedKey),
		ex("GET", "/v1/keys/key_2Nf6Gh8JkL0mP4qR7sT9vX", 200, map[string]string{"Content-Type": "application/json; charset=utf-8"}, recordedKey),
		jx("GET", "http://127.0.0.1:8080/v1/keys/key_x", 200, js(revokedKey)),
		jx("POST", "/v1/keys", 201, js(key(func(m map[string]any) { m["secret"] = "kw_" + strings.Repeat("A", 49) }))),
		jx("POST", "/v1/keys/key_x/rotate", 201, js(key(func(m map[string]any) { m["secret"] = "acme42_xyz" }))),
		jx("PATCH", "/v1/keys/key_x", 200, recordedKey),
		jx("PATCH", "/v1/keys/key_x", 200, js(key(func(m map[string]any) {
			m["rate_limit"] = map[string]any{"limit": 1000000000, "window_seconds": 86400}
		}))),
		jx("GET", "/v1/keys/key_x/usage?from=2026-11-22T09:00:00Z", 200, js(map[string]any{"key_id": "key_x",
			"from": "2026-11-22T09:00:00Z", "to": "2026-11-22T11:00:00Z", "buckets": []any{
				map[string]any{"hour": "2026-11-22T09:00:00Z", "counts": map[string]any{"VALID": 3, "RATE_LIMITED": 1}, "total": 4},
				map[string]any{"hour": "2026-11-22T10:00:00Z", "counts": map[string]any{"INACTIVE": 1}, "total": 1}}})),
		jx("GET", "/v1/keys/key_x/usage", 200, `{"key_id":"key_x","from":"2026-11-21T11:00:00Z","to":"2026-11-22T11:00:00Z","buckets":[]}`),
		px("GET", "/v1/keys/key_x/usage?from=x", 400, "invalid_argument"),
		px("GET", "/v1/keys/key_x/usage", 404, "not_found"),
		jx("POST", "/v1/keys/key_x/deactivate", 200, js(key(func(m map[string]any) { m["status"] = "inactive" }))),
		jx("POST", "/v1/keys/key_x/reactivate", 200, recordedKey),
		jx("POST", "/v1/keys/key_x/revoke", 200, js(revokedKey)),
		ex("DELETE", "/v1/keys/key_x", 204, nil, ""),
		jx("GET", "/v1/keys?q=bill&type=user&status=active&sort=-name&page_size=2", 200,
			js(map[string]any{"keys": []any{key(nil), revokedKey}, "next_page_token": "abc", "total": 3})),
		jx("GET", "/v1/keys", 200, list("keys")),
		jx("POST", "/v1/keys/revoke", 200, js(map[string]any{"revoked": 2, "failed": []any{
			map[string]any{"id": "key_a", "code": "not_revocable", "message": "Unable to Revoke API Key"},
			map[string]any{"id": "key_b", "code": "not_found", "message": "no such key"}}})),
		jx("POST", "/v1/keys/verify", 200, js(map[string]any{"valid": true, "code": "VALID", "key": verifiedKey})),
		jx("POST", "/v1/keys/verify", 200, js(map[string]any{"valid": false, "code": "NOT_FOUND"})),
		jx("POST", "/v1/keys/verify", 200, js(map[string]any{"valid": false, "code": "REVOKED", "key": verifiedKey})),
		jx("POST", "/v1/keys/verify", 200, js(map[string]any{"valid": false, "code": "FORBIDDEN", "key": with(verifiedKey, "expires_at", nil)})),
		px("POST", "/v1/keys/verify", 429, "too_many_requests"),
		ex("POST", "/v1/keys/verify", 429, map[string]string{"Content-Type": jsonCT, "Retry-After": "12"},
			js(map[string]any{"valid": false, "code": "RATE_LIMITED"})),
		ex("GET", "/v1/auth?require_role=admin&require_scopes=a,b", 200, authOK, ""),
		ex("HEAD", "/v1/auth", 200, authOK, ""),
		ex("PUT", "/v1/auth", 200, headers(authOK, "X-Keyward-Key-Scopes", ""), ""),
		ex("POST", "/v1/auth", 401, map[string]string{"X-Keyward-Code": "NOT_FOUND", "Content-Type": problemCT}, problem(401, "unauthenticated")),
		ex("PATCH", "/v1/auth", 401, map[string]string{"X-Keyward-Code": "KEYS_DISABLED"}, ""),
		ex("DELETE", "/v1/auth", 403, map[string]string{"X-Keyward-Code": "FORBIDDEN"}, ""),
		ex("GET", "/v1/auth", 429, map[string]string{"X-Keyward-Code": "RATE_LIMITED", "Retry-After": "60"}, ""),
		jx("POST", "/v1/sessions", 201, js(map[string]any{"token": "ses_secret", "expires_at": "2026-11-23T10:00:00Z", "user": user})),
		ex("POST", "/v1/sessions", 401, map[string]string{"Content-Type": problemCT}, problem(401, "unauthenticated")),
		ex("DELETE", "/v1/sessions/current", 204, nil, ""),
		jx("GET", "/v1/me", 200, js(with(me, "key", nil))),
		jx("GET", "/v1/me", 200, js(with(me, "key", key(nil)))),
		jx("GET", "/v1/users?kind=system", 200, list("users", user, with(user, "kind", "system", "roles", []string{}, "licensed", false))),
		jx("POST", "/v1/users", 201, js(user)),
		jx("GET", "/v1/users/usr_x", 200, js(user)),
		jx("PATCH", "/v1/users/usr_x", 200, js(user)),
		ex("DELETE", "/v1/users/usr_x", 204, nil, ""),
		jx("GET", "/v1/settings", 200, js(settings)),
		jx("PATCH", "/v1/settings", 200, js(with(settings, "max_expiration_days", 90, "key_prefix", "acme42"))),
		jx("GET", "/v1/events?action=key.revoked&since=2026-11-01T00:00:00Z", 200, list("events", event,
			with(event, "actor", map[string]any{"type": "system", "id": "", "name": "keyward"}, "ip", ""))),
		px("GET", "/v1/keys/key_x", 404, "not_found"),
		px("GET", "/v1/keys", 401, "unauthenticated"),
		px("GET", "/v1/keys?page_size=500", 400, "invalid_argument"),
		px("POST", "/v1/keys", 400, "expiration_too_long"),
		px("POST", "/v1/keys", 403, "license_required"),
		px("POST", "/v1/keys", 409, "key_limit_reached"),
		px("POST", "/v1/keys", 413, "payload_too_large"),
		px("POST", "/v1/keys/key_x/revoke", 409, "not_revocable"),
		px("POST", "/v1/users", 409, "conflict"),
		px("GET", "/v1/users", 500, "internal"),
		ex("GET", "/v1/keys/key_x", 404, map[string]string{"Content-Type": "application/problem+json; charset=utf-8"},
			js(map[string]any{"type": "https://keyward.dev/problems/not_found", "title": "Not Found", "status": 404,
				"detail": "no such key", "code": "not_found", "instance": "/v1/keys/key_x", "request_id": "r1"})),
		ex("GET", "/healthz", 200, map[string]string{"Content-Type": "text/plain; charset=utf-8"}, "ok\n"),
		ex("GET", "/readyz", 200, nil, ""),
		ex("GET", "/readyz", 503, map[string]string{"Content-Type": jsonCT}, `{"status":"database unreachable"}`),
		ex("GET", "/metrics", 200, map[string]string{"Content-Type": "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"},
			"# HELP up Up.\n# TYPE up gauge\nup 1\n"),
		jx("GET", "/v1/openapi.json", 200, string(mustReadDocument(t))),
	} {
		t.Run(e.String(), func(t *testing.T) { e.check(v, t) })
	}
}

// TestBadExchangesFail: each broken response is reported, with a message that
// says what is wrong.
func TestBadExchangesFail(t *testing.T) {
	v := mustValidator(t)
	const k = "/v1/keys/key_2Nf6Gh8JkL0mP4qR7sT9vX"
	for _, tc := range []struct {
		name string
		e    exchange
		want []string // each in the failure message
	}{
		{"key without status", jx("GET", k, 200, js(key(func(m map[string]any) { delete(m, "status") }))), []string{"status", "missing"}},
		{"key status bogus", jx("GET", k, 200, js(key(func(m map[string]any) { m["status"] = "bogus" }))), []string{`'/status'`}},
		{"key expires_at 5", jx("GET", k, 200, js(key(func(m map[string]any) { m["expires_at"] = 5 }))), []string{`'/expires_at'`}},
		{"undeclared status", jx("GET", k, 418, recordedKey), []string{"status 418 is not declared for operation getKey"}},
		{"route not in document", jx("GET", "/v1/nope", 200, `{}`), []string{"route not in the OpenAPI document"}},
		{"method not in document", jx("PUT", k, 200, recordedKey), []string{"route not in the OpenAPI document: the path has no PUT operation"}},

		{"key expires_at not a time", jx("GET", k, 200, js(key(func(m map[string]any) { m["expires_at"] = "tomorrow" }))), []string{`'/expires_at'`}},
		{"key created_at not UTC", jx("GET", k, 200, js(key(func(m map[string]any) { m["created_at"] = "2026-11-22T12:00:00+02:00" }))), []string{`'/created_at'`}},
		{"key created_at null", jx("GET", k, 200, js(key(func(m map[string]any) { m["created_at"] = nil }))), []string{`'/created_at'`}},
		{"key without expires_at", jx("GET", k, 200, js(key(func(m map[string]any) { delete(m, "expires_at") }))), []string{"expires_at", "missing"}},
		{"key without rate_limit", jx("GET", k, 200, js(key(func(m map[string]any) { delete(m, "rate_limit") }))), []string{"rate_limit", "missing"}},
		{"key rate_limit 0", jx("GET", k, 200, js(key(func(m map[string]any) {
			m["rate_limit"] = map[string]any{"limit": 0, "window_seconds": 60}
		}))), []string{`'/rate_limit'`}},
		{"key rate_limit window over a day", jx("GET", k, 200, js(key(func(m map[string]any) {
			m["rate_limit"] = map[string]any{"limit": 5, "window_seconds": 86401}
		}))), []string{`'/rate_limit'`}},
		{"key rate_limit without window", jx("GET", k, 200, js(key(func(m map[string]any) { m["rate_limit"] = map[string]any{"limit": 5} }))), []string{`'/rate_limit'`}},
		{"key rate_limit a number", jx("GET", k, 200, js(key(func(m map[string]any) { m["rate_limit"] = 5 }))), []string{`'/rate_limit'`}},
		{"usage without buckets", jx("GET", k+"/usage", 200, `{"key_id":"key_x","from":"2026-11-22T09:00:00Z","to":"2026-11-22T11:00:00Z"}`), []string{"buckets", "missing"}},
		{"usage code bogus", jx("GET", k+"/usage", 200, js(map[string]any{"key_id": "key_x", "from": "2026-11-22T09:00:00Z", "to": "2026-11-22T11:00:00Z",
			"buckets": []any{map[string]any{"hour": "2026-11-22T09:00:00Z", "counts": map[string]any{"OK": 1}, "total": 1}}})), []string{"getKeyUsage", "must be one of 'VALID'"}},
		{"usage count negative", jx("GET", k+"/usage", 200, js(map[string]any{"key_id": "key_x", "from": "2026-11-22T09:00:00Z", "to": "2026-11-22T11:00:00Z",
			"buckets": []any{map[string]any{"hour": "2026-11-22T09:00:00Z", "counts": map[string]any{"VALID": -1}, "total": 1}}})), []string{`'/buckets/0/counts/VALID'`}},
		{"usage hour not UTC", jx("GET", k+"/usage", 200, js(map[string]any{"key_id": "key_x", "from": "2026-11-22T09:00:00Z", "to": "2026-11-22T11:00:00Z",
			"buckets": []any{map[string]any{"hour": "2026-11-22T11:00:00+02:00", "counts": map[string]any{}, "total": 0}}})), []string{`'/buckets/0/hour'`}},
		{"usage without total", jx("GET", k+"/usage", 200, js(map[string]any{"key_id": "key_x", "from": "2026-11-22T09:00:00Z", "to": "2026-11-22T11:00:00Z",
			"buckets": []any{map[string]any{"hour": "2026-11-22T09:00:00Z", "counts": map[string]any{}}}})), []string{"total", "missing"}},
		{"key role bogus", jx("GET", k, 200, js(key(func(m map[string]any) { m["role"] = "root" }))), []string{`'/role'`}},
		{"key type bogus", jx("GET", k, 200, js(key(func(m map[string]any) { m["type"] = "robot" }))), []string{`'/type'`}},
		{"key id without prefix", jx("GET", k, 200, js(key(func(m map[string]any) { m["id"] = "2Nf6" }))), []string{`'/id'`}},
		{"key meta not an object", jx("GET", k, 200, js(key(func(m map[string]any) { m["meta"] = "x" }))), []string{`'/meta'`}},
		{"key holds its secret", jx("GET", k, 200, js(key(func(m map[string]any) { m["secret"] = "kw_leaked" }))), []string{"getKey", "at '/'", "secret"}},
		{"listed key holds its secret", jx("GET", "/v1/keys", 200, list("keys", key(func(m map[string]any) { m["secret"] = "kw_leaked" }))), []string{"listKeys", "at '/keys/0'", "secret"}},
		{"created key without secret", jx("POST", "/v1/keys", 201, recordedKey), []string{"secret", "missing"}},
		{"created key with 200", jx("POST", "/v1/keys", 200, recordedKey), []string{"status 200 is not declared"}},
		{"key as text/plain", ex("GET", k, 200, map[string]string{"Content-Type": "text/plain"}, recordedKey), []string{"Content-Type"}},
		{"key without Content-Type", ex("GET", k, 200, nil, recordedKey), []string{"Content-Type"}},
		{"key with empty body", jx("GET", k, 200, ""), []string{"getKey", "decode response body"}},
		{"key not JSON", jx("GET", k, 200, "{"), []string{"getKey", "decode response body"}},

		{"problem as application/json", jx("GET", k, 404, problem(404, "not_found")), []string{"Content-Type"}},
		{"problem code of another status", px("GET", k, 404, "conflict"), []string{`'/code'`}},
		{"problem code unknown", ex("POST", k+"/revoke", 409, map[string]string{"Content-Type": problemCT}, problem(409, "teapot")), []string{`'/code'`}},
		{"problem status differs", ex("GET", k, 404, map[string]string{"Content-Type": problemCT},
			js(map[string]any{"type": "about:blank", "title": "x", "status": 409, "detail": "x", "code": "not_found"})), []string{`'/status'`}},
		{"problem without code", ex("GET", k, 404, map[string]string{"Content-Type": problemCT},
			js(map[string]any{"type": "about:blank", "title": "x", "status": 404, "detail": "x"})), []string{"code", "missing"}},
		{"401 without WWW-Authenticate", ex("GET", "/v1/keys", 401, map[string]string{"Content-Type": problemCT}, problem(401, "unauthenticated")), []string{"WWW-Authenticate"}},
		{"429 without Retry-After", ex("POST", "/v1/keys/verify", 429, map[string]string{"Content-Type": problemCT}, problem(429, "too_many_requests")), []string{"Retry-After"}},
		{"404 on a route without ids", px("GET", "/v1/keys", 404, "not_found"), []string{"status 404 is not declared for operation listKeys"}},
		{"401 on an open route", px("POST", "/v1/keys/verify", 401, "unauthenticated"), []string{"status 401 is not declared"}},
		{"204 with a body", jx("DELETE", k, 204, `{}`), []string{"declares no body"}},
		{"delete with 200", jx("DELETE", k, 200, recordedKey), []string{"status 200 is not declared"}},

		{"list without next_page_token", jx("GET", "/v1/keys", 200, `{"keys":[],"total":0}`), []string{"next_page_token", "missing"}},
		{"list total negative", jx("GET", "/v1/keys", 200, `{"keys":[],"next_page_token":null,"total":-1}`), []string{`'/total'`}},
		{"list token a number", jx("GET", "/v1/users", 200, `{"users":[],"next_page_token":1,"total":0}`), []string{`'/next_page_token'`}},
		{"user kind bogus", jx("GET", "/v1/users/usr_x", 200, js(with(user, "kind", "robot"))), []string{`'/kind'`}},
		{"user role bogus", jx("GET", "/v1/users/usr_x", 200, js(with(user, "roles", []string{"root"}))), []string{`'/roles/0'`}},
		{"user licensed missing", jx("GET", "/v1/users/usr_x", 200, js(with(user, "licensed", deleted))), []string{"licensed", "missing"}},
		{"settings key_prefix bad", jx("GET", "/v1/settings", 200, js(with(settings, "key_prefix", "KW!"))), []string{`'/key_prefix'`}},
		{"settings maximum 0", jx("GET", "/v1/settings", 200, js(with(settings, "max_keys_per_user", 0))), []string{`'/max_keys_per_user'`}},
		{"settings days a string", jx("GET", "/v1/settings", 200, js(with(settings, "max_expiration_days", "30"))), []string{`'/max_expiration_days'`}},
		{"event actor type bogus", jx("GET", "/v1/events", 200, list("events", with(event, "actor", map[string]any{"type": "robot", "id": "x", "name": "x"}))), []string{`'/events/0/actor/type'`}},
		{"event without target", jx("GET", "/v1/events", 200, list("events", with(event, "target", deleted))), []string{"target", "missing"}},
		{"me with a bad key", jx("GET", "/v1/me", 200, js(map[string]any{"user": user, "tenant": map[string]any{"id": "ten_x", "name": "Acme"},
			"key": key(func(m map[string]any) { m["status"] = "bogus" })})), []string{"at '/key'", "anyOf"}},
		{"me without key", jx("GET", "/v1/me", 200, js(map[string]any{"user": user, "tenant": map[string]any{"id": "ten_x", "name": "Acme"}})), []string{"key", "missing"}},
		{"bulk failure code bogus", jx("POST", "/v1/keys/revoke", 200, js(map[string]any{"revoked": 0, "failed": []any{
			map[string]any{"id": "key_a", "code": "teapot", "message": "x"}}})), []string{`'/failed/0/code'`}},

		{"verify VALID but not valid", jx("POST", "/v1/keys/verify", 200, js(map[string]any{"valid": false, "code": "VALID", "key": verifiedKey})), []string{`'/valid'`}},
		{"verify VALID without key", jx("POST", "/v1/keys/verify", 200, js(map[string]any{"valid": true, "code": "VALID"})), []string{"key", "missing"}},
		{"verify valid with a failing code", jx("POST", "/v1/keys/verify", 200, js(map[string]any{"valid": true, "code": "EXPIRED", "key": verifiedKey})), []string{`'/valid'`}},
		{"verify NOT_FOUND with a key", jx("POST", "/v1/keys/verify", 200, js(map[string]any{"valid": false, "code": "NOT_FOUND", "key": verifiedKey})), []string{"verifyKey", "'not' failed"}},
		{"verify code bogus", jx("POST", "/v1/keys/verify", 200, js(map[string]any{"valid": false, "code": "OK"})), []string{`'/code'`}},
		{"verify key holds its secret", jx("POST", "/v1/keys/verify", 200, js(map[string]any{"valid": true, "code": "VALID",
			"key": with(verifiedKey, "secret", "kw_x")})), []string{"at '/key'", "'not' failed"}},

		{"auth 200 without key id", ex("GET", "/v1/auth", 200, headers(authOK, "X-Keyward-Key-Id", ""), ""), []string{"X-Keyward-Key-Id"}},
		{"auth 200 with a bad role", ex("GET", "/v1/auth", 200, headers(authOK, "X-Keyward-Key-Role", "root"), ""), []string{"X-Keyward-Key-Role"}},
		{"auth 200 with a body", ex("GET", "/v1/auth", 200, headers(authOK, "Content-Type", jsonCT), `{"valid":true}`), []string{"declares no body"}},
		{"auth 401 without code", ex("GET", "/v1/auth", 401, nil, ""), []string{"X-Keyward-Code"}},
		{"auth 401 with a bad code", ex("GET", "/v1/auth", 401, map[string]string{"X-Keyward-Code": "VALID"}, ""), []string{"X-Keyward-Code"}},
		{"auth 403 with another code", ex("GET", "/v1/auth", 403, map[string]string{"X-Keyward-Code": "REVOKED"}, ""), []string{"X-Keyward-Code"}},
		{"auth 429 without Retry-After", ex("GET", "/v1/auth", 429, nil, ""), []string{"Retry-After"}},
		{"auth HEAD without key id", ex("HEAD", "/v1/auth", 200, headers(authOK, "X-Keyward-Key-Id", ""), ""), []string{"forwardAuthHead", "X-Keyward-Key-Id"}},
		{"auth HEAD with undeclared status", ex("HEAD", "/v1/auth", 404, nil, ""), []string{"status 404 is not declared for operation forwardAuthHead"}},
		{"auth 404", px("GET", "/v1/auth", 404, "not_found"), []string{"status 404 is not declared"}},
		{"auth OPTIONS", ex("OPTIONS", "/v1/auth", 200, nil, ""), []string{"route not in the OpenAPI document"}},
		{"openapi.json not a document", jx("GET", "/v1/openapi.json", 200, `{"swagger":"2.0"}`), []string{"getOpenAPIDocument"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			tc.e.check(v, rec)
			got := rec.all()
			if got == "" {
				t.Fatalf("%v: passed, want a failure mentioning %q", tc.e, tc.want)
			}
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("%v: failure does not mention %q:\n%s", tc.e, want, got)
				}
			}
		})
	}
}

// TestTransport: the RoundTripper checks every exchange and gives the caller
// the whole body back.
func TestTransport(t *testing.T) {
	v := mustValidator(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/keys/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", jsonCT)
		io.WriteString(w, recordedKey)
	})
	mux.HandleFunc("GET /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", jsonCT)
		io.WriteString(w, `{"keys":[{"id":"key_1","status":"bogus"}],"next_page_token":null,"total":1}`)
	})
	mux.HandleFunc("DELETE /v1/keys/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /v1/nope", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	do := func(tb testing.TB, method, path string) (*http.Response, string) {
		client := &http.Client{Transport: v.Transport(tb, srv.Client().Transport)}
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	t.Run("good", func(t *testing.T) {
		resp, body := do(t, "GET", "/v1/keys/key_2Nf6Gh8JkL0mP4qR7sT9vX")
		if resp.StatusCode != 200 || body != recordedKey {
			t.Errorf("got %d %q, want 200 and the key back", resp.StatusCode, body)
		}
		if resp, body := do(t, "DELETE", "/v1/keys/key_x"); resp.StatusCode != 204 || body != "" {
			t.Errorf("got %d %q, want 204 and no body", resp.StatusCode, body)
		}
	})
	for _, tc := range []struct{ method, path, want, body string }{
		{"GET", "/v1/keys", `'/keys/0/status'`, `{"keys":[{"id":"key_1","status":"bogus"}],"next_page_token":null,"total":1}`},
		{"GET", "/v1/nope", "route not in the OpenAPI document", "hi"},
		{"PUT", "/v1/keys/key_x", "route not in the OpenAPI document", "Method Not Allowed\n"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := &recorder{TB: t}
			_, body := do(rec, tc.method, tc.path)
			if body != tc.body {
				t.Errorf("caller read %q, want %q", body, tc.body)
			}
			if got := rec.all(); !strings.Contains(got, tc.want) {
				t.Errorf("failures %q do not mention %q", got, tc.want)
			}
		})
	}
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 5 {
					do(t, "GET", "/v1/keys/key_2Nf6Gh8JkL0mP4qR7sT9vX")
				}
			})
		}
		wg.Wait()
	})
}

// TestNewRejectsBadDocuments: New fails the test on a document that is not
// OpenAPI or whose references dangle.
func TestNewRejectsBadDocuments(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":     `{`,
		"dangling ref": `{"openapi":"3.1.0","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"x","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Nope"}}}}}}}}}`,
		"bad schema":   `{"openapi":"3.1.0","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"x","content":{"application/json":{"schema":{"type":"strnig"}}}}}}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{TB: t}
			if v := New(rec, []byte(doc)); v != nil || !rec.Failed() {
				t.Errorf("New accepted it (failures: %q)", rec.all())
			}
		})
	}
}

// TestDocumentIsValidOpenAPI31 loads the document and validates it as OpenAPI 3.1.
func TestDocumentIsValidOpenAPI31(t *testing.T) {
	v := New(t, mustReadDocument(t))
	doc := v.Document()
	if err := doc.Validate(t.Context(), openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation()); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if doc.Info.Version != "1.0.0" {
		t.Errorf("info.version = %q, want 1.0.0", doc.Info.Version)
	}
}

// operations lists "METHOD /path" → operation of the document.
func operations(doc *openapi3.T) map[string]*openapi3.Operation {
	ops := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+path] = op
		}
	}
	return ops
}

// TestDocumentHasTheContractsRoutes: exactly the routes of spec/API.md.
func TestDocumentHasTheContractsRoutes(t *testing.T) {
	want := []string{
		"POST /v1/sessions", "DELETE /v1/sessions/current", "GET /v1/me",
		"GET /v1/users", "POST /v1/users", "GET /v1/users/{id}", "PATCH /v1/users/{id}", "DELETE /v1/users/{id}",
		"POST /v1/keys", "GET /v1/keys", "GET /v1/keys/{id}", "PATCH /v1/keys/{id}", "DELETE /v1/keys/{id}",
		"POST /v1/keys/{id}/deactivate", "POST /v1/keys/{id}/reactivate", "POST /v1/keys/{id}/revoke",
		"POST /v1/keys/{id}/rotate", "POST /v1/keys/revoke", "POST /v1/keys/verify",
		"GET /v1/keys/{id}/usage", // Keyward's addition: hourly usage counts
		"GET /v1/auth", "POST /v1/auth", "PUT /v1/auth", "PATCH /v1/auth", "DELETE /v1/auth", "HEAD /v1/auth",
		"GET /v1/settings", "PATCH /v1/settings", "GET /v1/events",
		"GET /healthz", "GET /readyz", "GET /metrics", "GET /v1/openapi.json",
	}
	got := slices.Sorted(maps.Keys(operations(mustValidator(t).Document())))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("routes:\n got %q\nwant %q", got, want)
	}
}

// TestEveryOperationIsNamed: a unique operationId and a summary on each.
func TestEveryOperationIsNamed(t *testing.T) {
	seen := map[string]string{}
	for route, op := range operations(mustValidator(t).Document()) {
		if op.OperationID == "" {
			t.Errorf("%s: no operationId", route)
		} else if other, dup := seen[op.OperationID]; dup {
			t.Errorf("%s: operationId %q is also %s's", route, op.OperationID, other)
		}
		seen[op.OperationID] = route
		if op.Summary == "" {
			t.Errorf("%s: no summary", route)
		}
	}
}

// TestEveryRefResolves walks the raw JSON: every $ref is local and points at
// something that exists (independently of the loader, which resolves them too).
func TestEveryRefResolves(t *testing.T) {
	var root any
	if err := json.Unmarshal(mustReadDocument(t), &root); err != nil {
		t.Fatal(err)
	}
	n := 0
	var walk func(at string, node any)
	walk = func(at string, node any) {
		switch node := node.(type) {
		case map[string]any:
			if ref, ok := node["$ref"].(string); ok {
				n++
				if _, err := resolvePointer(root, ref); err != nil {
					t.Errorf("%s: $ref %q: %v", at, ref, err)
				}
			}
			for k, v := range node {
				walk(at+"/"+k, v)
			}
		case []any:
			for i, v := range node {
				walk(fmt.Sprintf("%s/%d", at, i), v)
			}
		}
	}
	walk("#", root)
	if n < 50 {
		t.Errorf("only %d $refs found; the walk is broken", n)
	}
}

func resolvePointer(root any, ref string) (any, error) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("not a local reference")
	}
	node := root
	for tok := range strings.SplitSeq(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := node.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q: not an object", tok)
		}
		if node, ok = m[tok]; !ok {
			return nil, fmt.Errorf("%q: no such member", tok)
		}
	}
	return node, nil
}

// TestSecurity: the open routes say security: [], the others inherit the
// global requirement of a bearer credential, an X-API-Key or the session cookie.
func TestSecurity(t *testing.T) {
	doc := mustValidator(t).Document()
	open := []string{"POST /v1/sessions", "POST /v1/keys/verify", "GET /v1/openapi.json", "GET /healthz", "GET /readyz", "GET /metrics",
		"GET /v1/auth", "POST /v1/auth", "PUT /v1/auth", "PATCH /v1/auth", "DELETE /v1/auth", "HEAD /v1/auth"}
	for route, op := range operations(doc) {
		isOpen := slices.Contains(open, route)
		switch {
		case isOpen && (op.Security == nil || len(*op.Security) != 0):
			t.Errorf("%s: want security: []", route)
		case !isOpen && op.Security != nil:
			t.Errorf("%s: want the global security", route)
		}
	}
	var global []string
	for _, req := range doc.Security {
		global = slices.AppendSeq(global, maps.Keys(req))
	}
	slices.Sort(global)
	if want := []string{"apiKey", "bearer", "session"}; !slices.Equal(global, want) {
		t.Errorf("global security %q, want %q", global, want)
	}
	s := doc.Components.SecuritySchemes
	if b := s["bearer"].Value; b.Type != "http" || b.Scheme != "bearer" {
		t.Errorf("bearer scheme %+v", b)
	}
	if k := s["apiKey"].Value; k.Type != "apiKey" || k.In != "header" || k.Name != "X-API-Key" {
		t.Errorf("apiKey scheme %+v", k)
	}
	if c := s["session"].Value; c.Type != "apiKey" || c.In != "cookie" || c.Name != "keyward_session" {
		t.Errorf("session scheme %+v", c)
	}
}

// TestGenericResponses: each operation declares the refusals every route of its
// kind can give, errors are problem documents, and 429s say when to retry.
func TestGenericResponses(t *testing.T) {
	for route, op := range operations(mustValidator(t).Document()) {
		_, path, _ := strings.Cut(route, " ")
		has := func(status string) bool { return op.Responses.Value(status) != nil }
		want := []string{"500"}
		if strings.HasPrefix(path, "/v1/") && path != "/v1/openapi.json" {
			want = append(want, "400", "403")
		}
		if op.Security == nil {
			want = append(want, "401")
		}
		if strings.Contains(path, "{id}") {
			want = append(want, "404")
		}
		if op.RequestBody != nil {
			want = append(want, "413")
		}
		if path == "/v1/keys/verify" || path == "/v1/auth" {
			want = append(want, "429")
		}
		for _, status := range want {
			if !has(status) {
				t.Errorf("%s: does not declare %s", route, status)
			}
		}
		for status, r := range op.Responses.Map() {
			if status[0] != '4' && status[0] != '5' || len(r.Value.Content) == 0 {
				continue
			}
			if r.Value.Content["application/problem+json"] == nil && status != "503" {
				t.Errorf("%s %s: no application/problem+json", route, status)
			}
			if status == "429" && r.Value.Headers["Retry-After"] == nil {
				t.Errorf("%s 429: no Retry-After", route)
			}
			if status == "401" && op.Security == nil && r.Value.Headers["WWW-Authenticate"] == nil {
				t.Errorf("%s 401: no WWW-Authenticate", route)
			}
		}
		if path == "/v1/auth" {
			for _, status := range []string{"401", "403", "429"} {
				if op.Responses.Value(status).Value.Headers["X-Keyward-Code"] == nil {
					t.Errorf("%s %s: no X-Keyward-Code", route, status)
				}
			}
		}
	}
}

// TestRequestBodiesRejectUnknownFields: the server rejects unknown fields, so
// every request body schema (each branch of a oneOf) closes additionalProperties;
// and validating a body with an extra field does fail.
func TestRequestBodiesRejectUnknownFields(t *testing.T) {
	for route, op := range operations(mustValidator(t).Document()) {
		if op.RequestBody == nil {
			continue
		}
		mt := op.RequestBody.Value.Content.Get("application/json")
		if mt == nil || mt.Schema == nil {
			t.Errorf("%s: no application/json request schema", route)
			continue
		}
		s := mt.Schema.Value
		branches := []*openapi3.Schema{s}
		if len(s.OneOf) > 0 {
			branches = branches[:0]
			for _, b := range s.OneOf {
				branches = append(branches, b.Value)
			}
		}
		for i, b := range branches {
			if ap := b.AdditionalProperties.Has; ap == nil || *ap {
				t.Errorf("%s (schema %d): additionalProperties is not false", route, i)
			}
		}
		if err := s.VisitJSON(map[string]any{"name": "x", "no_such_field": 1}, openapi3.EnableJSONSchema2020()); err == nil {
			t.Errorf("%s: a body with an unknown field passes", route)
		}
	}
}

// TestBulkRevokeRequestIsExactlyOneOf: ids, type or all, never two of them.
func TestBulkRevokeRequestIsExactlyOneOf(t *testing.T) {
	s := mustValidator(t).Document().Components.Schemas["BulkRevokeRequest"].Value
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"ids":["key_a","key_b"]}`, true},
		{`{"ids":["key_a"],"reason":"leaked"}`, true},
		{`{"type":"system"}`, true},
		{`{"all":true,"reason":"incident"}`, true},
		{`{}`, false},
		{`{"reason":"x"}`, false},
		{`{"ids":[]}`, false},
		{`{"all":false}`, false},
		{`{"type":"robot"}`, false},
		{`{"ids":["key_a"],"all":true}`, false},
		{`{"type":"user","all":true}`, false},
	} {
		var body any
		if err := json.Unmarshal([]byte(tc.body), &body); err != nil {
			t.Fatal(err)
		}
		err := s.VisitJSON(body, openapi3.EnableJSONSchema2020())
		if (err == nil) != tc.ok {
			t.Errorf("%s: valid = %v, want %v (%v)", tc.body, err == nil, tc.ok, err)
		}
	}
}

// TestRateLimitRequestSchemas: rate_limit in the create and PATCH bodies is
// null or an object with both bounded integers and nothing else, as the
// server decodes it.
func TestRateLimitRequestSchemas(t *testing.T) {
	schemas := mustValidator(t).Document().Components.Schemas
	for _, name := range []string{"CreateKeyRequest", "UpdateKeyRequest"} {
		s := schemas[name].Value
		for _, tc := range []struct {
			rateLimit string
			ok        bool
		}{
			{`null`, true},
			{`{"limit":1,"window_seconds":1}`, true},
			{`{"limit":1000000000,"window_seconds":86400}`, true},
			{`{"limit":0,"window_seconds":60}`, false},
			{`{"limit":1000000001,"window_seconds":60}`, false},
			{`{"limit":5,"window_seconds":0}`, false},
			{`{"limit":5,"window_seconds":86401}`, false},
			{`{"limit":5}`, false},
			{`{"window_seconds":5}`, false},
			{`{"limit":1.5,"window_seconds":60}`, false},
			{`{"limit":5,"window_seconds":60,"burst":2}`, false},
			{`5`, false},
			{`"5/60s"`, false},
		} {
			var body any
			if err := json.Unmarshal([]byte(`{"name":"k","rate_limit":`+tc.rateLimit+`}`), &body); err != nil {
				t.Fatal(err)
			}
			err := s.VisitJSON(body, openapi3.EnableJSONSchema2020())
			if (err == nil) != tc.ok {
				t.Errorf("%s with rate_limit %s: valid = %v, want %v (%v)", name, tc.rateLimit, err == nil, tc.ok, err)
			}
		}
	}
}
