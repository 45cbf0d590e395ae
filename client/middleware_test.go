package client

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"

	"github.com/keyward/keyward/internal/testclock"
)

// mwEnv is a Keyward, a service behind the middleware, and a counter of the
// middleware's calls to Keyward.
type mwEnv struct {
	kw      *testServer
	admin   *Client
	calls   *countingTransport // the middleware's requests to Keyward
	clock   *testclock.Clock
	service *httptest.Server
	v       *Verifier

	mu   sync.Mutex
	seen []*VerifiedKey // what the handler found in its context
}

func newMWEnv(t *testing.T, o MiddlewareOptions, so serverOpts) *mwEnv {
	t.Helper()
	e := &mwEnv{clock: testclock.New(time.Now())}
	if so.now == nil {
		so.now = e.clock.Now // one clock for Keyward and the middleware
	}
	e.kw = startServer(t, so)
	e.admin = e.kw.admin(t)
	e.calls = &countingTransport{base: http.DefaultTransport}
	kc := New(e.kw.URL, WithHTTPClient(httpClient(t, e.calls)))
	if o.Now == nil {
		o.Now = e.clock.Now
	}
	e.v = kc.NewVerifier(o)
	e.service = httptest.NewServer(e.v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, ok := KeyFromContext(r.Context())
		if !ok {
			t.Error("handler reached without a key in the context")
			http.Error(w, "no key", 500)
			return
		}
		e.mu.Lock()
		e.seen = append(e.seen, k)
		e.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello "+k.ID)
	})))
	t.Cleanup(e.service.Close)
	return e
}

// answer is what the service answered.
type answer struct {
	status  int
	header  http.Header
	body    string
	problem struct {
		Type, Title, Detail, Code string
		Status                    int
	}
}

// get calls the service with these headers and query.
func (e *mwEnv) get(t *testing.T, header http.Header, query string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), "GET", e.service.URL+"/things"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("refusal %d with Content-Type %q", resp.StatusCode, ct)
		}
		if err := json.Unmarshal(b, &a.problem); err != nil {
			t.Fatalf("refusal %d: %q: %v", resp.StatusCode, b, err)
		}
		if a.problem.Status != resp.StatusCode || a.problem.Code == "" || a.problem.Detail == "" || a.problem.Title == "" || a.problem.Type == "" {
			t.Errorf("refusal %d: problem %+v", resp.StatusCode, a.problem)
		}
		if resp.StatusCode == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without WWW-Authenticate: Bearer")
		}
	}
	return a
}

func bearer(secret string) http.Header { return http.Header{"Authorization": {"Bearer " + secret}} }

// wantCalls checks how many calls the middleware made to Keyward since the last check.
func (e *mwEnv) wantCalls(t *testing.T, want int64, what string) {
	t.Helper()
	if n := e.calls.n.Swap(0); n != want {
		t.Errorf("%s: %d calls to Keyward, want %d", what, n, want)
	}
}

func (e *mwEnv) lastSeen() *VerifiedKey {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) == 0 {
		return nil
	}
	return e.seen[len(e.seen)-1]
}

func TestClientMiddleware(t *testing.T) {
	t.Parallel()
	e := newMWEnv(t, MiddlewareOptions{}, serverOpts{})
	ctx := ctxT(t)
	k, err := e.admin.CreateKey(ctx, CreateKeyRequest{Name: "svc", Scopes: []string{"things:read"}, Meta: map[string]any{"plan": "pro"}})
	if err != nil {
		t.Fatal(err)
	}

	// Valid: the handler runs and sees the key.
	a := e.get(t, bearer(k.Secret), "")
	if a.status != 200 || a.body != "hello "+k.ID {
		t.Fatalf("valid key: %d %q", a.status, a.body)
	}
	got := e.lastSeen()
	want := &VerifiedKey{ID: k.ID, TenantID: e.kw.TenantID, Name: "svc", OwnerID: e.kw.AdminID, Type: TypeUser,
		Role: KeyRoleReadonly, Scopes: []string{"things:read"}, Meta: map[string]any{"plan": "pro"}}
	if got == nil || got.ID != want.ID || got.TenantID != want.TenantID || got.OwnerID != want.OwnerID || got.Role != want.Role ||
		!slices.Equal(got.Scopes, want.Scopes) || got.Meta["plan"] != "pro" || got.Name != "svc" || got.Type != TypeUser {
		t.Errorf("key in the context: %+v, want %+v", got, want)
	}
	e.wantCalls(t, 1, "first request")

	// Cached: the second request does not reach Keyward, whichever header.
	for _, h := range []http.Header{bearer(k.Secret), {"X-Api-Key": {k.Secret}}, {"Authorization": {"bearer  " + k.Secret + " "}}} {
		if a := e.get(t, h, ""); a.status != 200 {
			t.Errorf("cached valid key with %v: %d", h, a.status)
		}
	}
	e.wantCalls(t, 0, "repeated requests within the TTL")

	// Missing key, or in the query only, or a non-bearer Authorization: 401 without a call.
	for name, tc := range map[string]struct {
		h     http.Header
		query string
	}{
		"none":          {nil, ""},
		"query":         {nil, "?api_key=" + k.Secret + "&key=" + k.Secret},
		"basic":         {http.Header{"Authorization": {"Basic " + k.Secret}}, ""},
		"basic+x-api":   {http.Header{"Authorization": {"Basic xyz"}, "X-Api-Key": {k.Secret}}, ""},
		"empty bearer":  {bearer(""), ""},
		"malformed":     {bearer("kw_short"), ""},
		"bad checksum":  {bearer(k.Secret[:len(k.Secret)-1] + string(flip(k.Secret[len(k.Secret)-1]))), ""},
		"wrong charset": {bearer(strings.ToUpper(k.Secret)), ""},
	} {
		a := e.get(t, tc.h, tc.query)
		if a.status != 401 || a.problem.Code != CodeUnauthenticated {
			t.Errorf("%s: %d %+v", name, a.status, a.problem)
		}
		if strings.Contains(a.body, k.Secret) {
			t.Errorf("%s: the refusal echoes the secret", name)
		}
	}
	e.wantCalls(t, 0, "missing and malformed keys")

	// Unknown but well-formed: one call, then the refusal is cached briefly.
	unknown := mustSecret(t, "kw")
	for range 3 {
		if a := e.get(t, bearer(unknown), ""); a.status != 401 || a.problem.Code != CodeUnauthenticated {
			t.Errorf("unknown key: %d %+v", a.status, a.problem)
		}
	}
	e.wantCalls(t, 1, "an unknown key three times within the failure TTL")
	e.clock.Advance(1100 * time.Millisecond)
	e.get(t, bearer(unknown), "")
	e.wantCalls(t, 1, "the unknown key after the failure TTL")

	// Revoked: the cached VALID answer holds until its TTL, then 401.
	if _, err := e.admin.RevokeKey(ctx, k.ID, ""); err != nil {
		t.Fatal(err)
	}
	if a := e.get(t, bearer(k.Secret), ""); a.status != 200 {
		t.Errorf("revoked key within the cache TTL: %d (the cache should still answer)", a.status)
	}
	e.wantCalls(t, 0, "revoked key within the TTL")
	e.clock.Advance(5 * time.Second)
	a = e.get(t, bearer(k.Secret), "")
	if a.status != 401 || a.problem.Code != CodeUnauthenticated || !strings.Contains(a.problem.Detail, "revoked") {
		t.Errorf("revoked key after the TTL: %d %+v", a.status, a.problem)
	}
	e.wantCalls(t, 1, "revoked key after the TTL")

	// Verify used directly gives the code behind a refusal.
	_, err = e.v.Verify(ctx, k.Secret)
	if re := wantCode(t, err, 401, CodeUnauthenticated); re.VerifyCode != VerifyRevoked {
		t.Errorf("VerifyCode %q, want REVOKED", re.VerifyCode)
	}
	// Callers cannot spoil the cached refusal.
	err.(*Error).Detail = "changed"
	_, err = e.v.Verify(ctx, k.Secret)
	if err.(*Error).Detail == "changed" {
		t.Error("the cached refusal is shared with callers")
	}
	e.wantCalls(t, 0, "cached refusal")
}

func TestClientMiddlewareRoleAndScopes(t *testing.T) {
	t.Parallel()
	e := newMWEnv(t, MiddlewareOptions{RequireRole: KeyRoleAdmin, RequireScopes: []string{"a", "b"}}, serverOpts{})
	ctx := ctxT(t)
	mk := func(role string, scopes ...string) string {
		k, err := e.admin.CreateKey(ctx, CreateKeyRequest{Name: role + strings.Join(scopes, ""), Role: role, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return k.Secret
	}
	for _, tc := range []struct {
		name   string
		secret string
		status int
		code   string
	}{
		{"admin with both scopes", mk(KeyRoleAdmin, "a", "b", "c"), 200, ""},
		{"readonly with both scopes", mk(KeyRoleReadonly, "a", "b"), 403, CodePermissionDenied},
		{"admin short of a scope", mk(KeyRoleAdmin, "a"), 403, CodePermissionDenied},
	} {
		a := e.get(t, bearer(tc.secret), "")
		if a.status != tc.status || a.problem.Code != tc.code {
			t.Errorf("%s: %d %+v", tc.name, a.status, a.problem)
		}
		// Cached either way.
		if b := e.get(t, bearer(tc.secret), ""); b.status != tc.status {
			t.Errorf("%s again: %d", tc.name, b.status)
		}
	}
	e.wantCalls(t, 3, "three keys twice each")

	// Another middleware instance over the same client asks for other things.
	kc := New(e.kw.URL)
	loose := httptest.NewServer(kc.Middleware(MiddlewareOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := KeyFromContext(r.Context())
		io.WriteString(w, k.Role)
	})))
	defer loose.Close()
	req, _ := http.NewRequest("GET", loose.URL, nil)
	req.Header.Set("X-API-Key", mk(KeyRoleReadonly))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != KeyRoleReadonly {
		t.Errorf("readonly key without requirements: %d %q", resp.StatusCode, b)
	}
}

func TestClientMiddlewareKeywardDown(t *testing.T) {
	t.Parallel()
	var handled []*Error
	v := New("http://127.0.0.1:1").NewVerifier(MiddlewareOptions{
		Timeout: 2 * time.Second,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err *Error) {
			handled = append(handled, err)
			WriteProblem(w, err)
		},
	})
	h := v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("handler reached") }))
	for range 2 {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+mustSecret(t, "kw"))
		h.ServeHTTP(rec, r)
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"code":"unavailable"`) {
			t.Errorf("Keyward down: %d %s", rec.Code, rec.Body)
		}
	}
	if len(handled) != 2 || handled[0].Status != 503 || handled[0].Code != CodeUnavailable {
		t.Errorf("ErrorHandler saw %+v", handled)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) != 0 {
		t.Errorf("errors were cached: %d entries", len(v.cache))
	}
}

func TestClientMiddlewareThrottled(t *testing.T) {
	t.Parallel()
	// Keyward throttles the service's address after 3 failures a minute;
	// the middleware passes the 429 and its Retry-After on, and valid keys
	// still pass.
	e := newMWEnv(t, MiddlewareOptions{FailureTTL: -1}, serverOpts{verifyFailureLimit: 3})
	var a answer
	for range 6 {
		if a = e.get(t, bearer(mustSecret(t, "kw")), ""); a.status == 429 {
			break
		}
	}
	if a.status != 429 || a.problem.Code != CodeTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Fatalf("throttled: %d %+v Retry-After %q", a.status, a.problem, a.header.Get("Retry-After"))
	}
	if a := e.get(t, bearer(e.kw.AdminKey), ""); a.status != 200 {
		t.Errorf("valid key while throttled: %d", a.status)
	}
	// FailureTTL < 0: failures are never cached.
	e.calls.n.Store(0)
	s := mustSecret(t, "kw")
	e.get(t, bearer(s), "")
	e.get(t, bearer(s), "")
	e.wantCalls(t, 2, "failures with FailureTTL -1")
}

func TestClientMiddlewareCacheBounds(t *testing.T) {
	t.Parallel()
	e := newMWEnv(t, MiddlewareOptions{CacheSize: 2, CacheTTL: time.Hour}, serverOpts{})
	ctx := ctxT(t)
	if _, err := e.admin.UpdateSettings(ctx, SettingsUpdate{MaxKeysPerUser: Ptr(20)}); err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for i := range 4 {
		k, err := e.admin.CreateKey(ctx, CreateKeyRequest{Name: "k" + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, k.Secret)
	}
	for _, s := range secrets {
		if a := e.get(t, bearer(s), ""); a.status != 200 {
			t.Fatalf("valid key: %d", a.status)
		}
	}
	e.v.mu.Lock()
	n := len(e.v.cache)
	for h := range e.v.cache {
		for _, s := range secrets {
			if strings.Contains(string(h[:]), s) {
				t.Error("the cache holds a secret")
			}
		}
	}
	e.v.mu.Unlock()
	if n != 2 {
		t.Errorf("cache of size 2 holds %d entries", n)
	}
	e.wantCalls(t, 4, "four keys")
	// The most recent key is cached.
	e.get(t, bearer(secrets[3]), "")
	e.wantCalls(t, 0, "the last key again")

	// A key that expires before the TTL is cached only until then.
	exp := e.clock.Now().Add(2 * time.Second)
	k, err := e.admin.CreateKey(ctx, CreateKeyRequest{Name: "short", ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	e.get(t, bearer(k.Secret), "")
	e.wantCalls(t, 1, "short-lived key")
	e.clock.Advance(2 * time.Second)
	if a := e.get(t, bearer(k.Secret), ""); a.status != 401 || !strings.Contains(a.problem.Detail, "expired") {
		t.Errorf("key past its expiry: %d %+v", a.status, a.problem)
	}
	e.wantCalls(t, 1, "the key past its expiry")
}

func TestClientMiddlewareConcurrent(t *testing.T) {
	t.Parallel()
	e := newMWEnv(t, MiddlewareOptions{}, serverOpts{})
	// Many requests at once with one new key: one call to Keyward.
	var wg sync.WaitGroup
	statuses := make([]int, 32)
	start := make(chan struct{})
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("GET", e.service.URL, nil)
			req.Header.Set("Authorization", "Bearer "+e.kw.AdminKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Errorf("request %d: %d", i, s)
		}
	}
	// Requests that arrive during the first call wait for it; those after
	// it read the cache.
	if n := e.calls.n.Load(); n != 1 {
		t.Errorf("32 concurrent requests: %d calls to Keyward, want 1", n)
	}
}

// TestClientSecretFormat cross-checks the offline check with the server's.
func TestClientSecretFormat(t *testing.T) {
	t.Parallel()
	for range 200 {
		for _, prefix := range []string{"kw", "acme", "a1b2c3d4e5f6"} {
			s := mustSecret(t, prefix)
			if !wellFormedSecret(s) {
				t.Fatalf("a real secret refused: %q", s)
			}
			// Any one-character change is refused by both.
			i := mustIntn(t, len(s))
			m := s[:i] + string(flip(s[i])) + s[i+1:]
			if wellFormedSecret(m) != keyward.ParseSecret(m) {
				t.Fatalf("%q: client %v, server %v", m, wellFormedSecret(m), keyward.ParseSecret(m))
			}
		}
	}
	for _, s := range []string{"", "kw_", "k_" + strings.Repeat("a", 49), "KW_" + strings.Repeat("a", 49), "kw-" + strings.Repeat("a", 49),
		"kw_" + strings.Repeat("a", 48), "abcdefghijklm_" + strings.Repeat("a", 49), "kw_" + strings.Repeat("é", 24) + "a"} {
		if wellFormedSecret(s) || keyward.ParseSecret(s) {
			t.Errorf("%q accepted: client %v, server %v", s, wellFormedSecret(s), keyward.ParseSecret(s))
		}
	}
}

func mustSecret(tb testing.TB, prefix string) string {
	tb.Helper()
	s, err := keyward.NewSecret(rand.Reader, prefix)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustIntn(tb testing.TB, n int) int {
	var b [1]byte
	rand.Read(b[:])
	return int(b[0]) % n
}

// flip changes a character into another of the same class.
func flip(c byte) byte {
	switch {
	case c == 'z':
		return 'a'
	case c == 'Z':
		return 'A'
	case c == '9':
		return '0'
	case c == '_':
		return '-'
	}
	return c + 1
}
