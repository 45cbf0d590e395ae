package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/api"
	"github.com/keyward/keyward/api/openapitest"
	"github.com/keyward/keyward/internal/testclock"
	"github.com/keyward/keyward/sqlite"
)

// cheapPasswords keeps argon2id fast enough for fixtures with many users.
var cheapPasswords = &keyward.PasswordParams{Memory: 64, Time: 1, Threads: 1}

// testPassword is every fixture person's password (≥ 12 characters).
const testPassword = "correct horse battery staple"

var (
	validatorOnce sync.Once
	validator     *openapitest.Validator
)

// mustValidator loads api.OpenAPIDocument once for the whole package.
func mustValidator(tb testing.TB) *openapitest.Validator {
	tb.Helper()
	validatorOnce.Do(func() { validator = openapitest.New(tb, api.OpenAPIDocument) })
	if validator == nil {
		tb.Fatal("the OpenAPI validator could not be built")
	}
	return validator
}

// logSink keeps the server's warnings and errors so that a failing test can
// show them (a recovered panic is only visible there).
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// envOptions tune newEnv; zero values are fine.
type envOptions struct {
	network            bool // serve with httptest.NewServer (else ServeHTTP + recorder)
	verifyFailureLimit int
	onUse              func(keyID string, at time.Time)
}

// env is one real server over a real SQLite file.
type env struct {
	svc   *keyward.Service
	srv   *api.Server
	ts    *httptest.Server
	clock *testclock.Clock
	logs  *logSink
}

func newEnv(tb testing.TB, o envOptions) *env {
	tb.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "keyward.db"))
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { store.Close() })
	hasher, err := keyward.NewHasher(bytes.Repeat([]byte("pepper!"), 8))
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{clock: testclock.New(time.Now().UTC().Truncate(time.Second)), logs: &logSink{}}
	e.svc = keyward.NewService(store, hasher, keyward.Options{Now: e.clock.Now, PasswordParams: cheapPasswords, OnUse: o.onUse})
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.srv = api.New(e.svc, api.Options{Logger: logger, Metrics: api.NewMetrics(), VerifyFailureLimit: o.verifyFailureLimit})
	if o.network {
		e.ts = httptest.NewServer(e.srv)
		tb.Cleanup(e.ts.Close)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			if l := e.logs.String(); l != "" {
				tb.Logf("server log:\n%s", l)
			}
		}
	})
	return e
}

// req is one request to send.
type req struct {
	method, path string
	body         any    // nil: no body; string or []byte: raw; io.Reader: chunked; anything else: JSON
	bearer       string // Authorization: Bearer
	apiKey       string // X-API-Key
	header       http.Header
	remoteAddr   string // recorder only
	noCheck      bool   // skip the OpenAPI check (routes outside the document)
}

// reply is what came back.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) String() string {
	b := string(r.Body)
	if len(b) > 600 {
		b = b[:600] + "…"
	}
	return http.StatusText(r.Status) + " " + r.Header.Get("Content-Type") + " " + strings.TrimSpace(b)
}

// decode reads the JSON body into v.
func (r reply) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r, err)
	}
}

// object reads the JSON body as an object.
func (r reply) object(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	r.decode(tb, &m)
	return m
}

func (q req) build(tb testing.TB, base string) *http.Request {
	tb.Helper()
	var body io.Reader
	switch b := q.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	case io.Reader:
		// Of unknown length: the client sends it chunked.
		body = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	r, err := http.NewRequest(q.method, base+q.path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if q.body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if q.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	if q.apiKey != "" {
		r.Header.Set("X-API-Key", q.apiKey)
	}
	for k, vs := range q.header {
		r.Header[k] = vs
	}
	return r
}

// send makes the request through the network (when the env has a server) or
// straight into ServeHTTP, and checks the answer against the OpenAPI document.
func (e *env) send(tb testing.TB, q req) reply {
	tb.Helper()
	if e.ts == nil || q.remoteAddr != "" {
		return e.record(tb, q)
	}
	r := q.build(tb, e.ts.URL)
	rt := http.DefaultTransport
	if !q.noCheck {
		rt = mustValidator(tb).Transport(tb, rt)
	}
	resp, err := (&http.Client{Transport: rt}).Do(r)
	if err != nil {
		tb.Fatalf("%s %s: %v", q.method, q.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", q.method, q.path, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// record serves the request with an httptest.ResponseRecorder.
func (e *env) record(tb testing.TB, q req) reply {
	tb.Helper()
	r := q.build(tb, "http://keyward.test")
	if q.remoteAddr != "" {
		r.RemoteAddr = q.remoteAddr
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, r)
	resp := rec.Result()
	body := rec.Body.Bytes()
	if !q.noCheck {
		mustValidator(tb).Check(tb, r, resp, body)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// login opens a session through POST /v1/sessions and returns its token.
func (e *env) login(tb testing.TB, email string) string {
	tb.Helper()
	r := e.send(tb, req{method: "POST", path: "/v1/sessions", body: map[string]string{"email": email, "password": testPassword}})
	if r.Status != http.StatusCreated {
		tb.Fatalf("login %s: %s", email, r)
	}
	var out struct {
		Token string `json:"token"`
	}
	r.decode(tb, &out)
	if out.Token == "" {
		tb.Fatalf("login %s: no token in %s", email, r)
	}
	return out.Token
}

// principal resolves a credential the way the server does.
func (e *env) principal(tb testing.TB, cred string) *keyward.Principal {
	tb.Helper()
	p, err := e.svc.Authenticate(context.Background(), cred)
	if err != nil {
		tb.Fatalf("authenticate: %v", err)
	}
	return p
}

// mustBootstrap creates a tenant (keys on) with an admin+developer who has a
// password, and returns the bootstrap result.
func (e *env) mustBootstrap(tb testing.TB, tenant, email string) *keyward.BootstrapResult {
	tb.Helper()
	pw := testPassword
	res, err := e.svc.Bootstrap(context.Background(), keyward.BootstrapInput{Tenant: tenant, Email: email, Password: &pw})
	if err != nil {
		tb.Fatalf("bootstrap %s: %v", tenant, err)
	}
	return res
}

// mustUser creates a user through the service as p.
func (e *env) mustUser(tb testing.TB, p *keyward.Principal, email, kind string, roles ...string) *keyward.User {
	tb.Helper()
	in := keyward.UserInput{Email: email, Name: strings.Split(email, "@")[0], Kind: kind, Roles: roles}
	if kind == keyward.KindUser {
		pw := testPassword
		in.Password = &pw
	}
	u, err := e.svc.CreateUser(context.Background(), p, in)
	if err != nil {
		tb.Fatalf("create user %s: %v", email, err)
	}
	return u
}

// mustKey creates a key through the service as p and returns it with its secret.
func (e *env) mustKey(tb testing.TB, p *keyward.Principal, in keyward.KeyInput) (*keyward.Key, string) {
	tb.Helper()
	if in.Name == "" {
		in.Name = "test key"
	}
	k, secret, err := e.svc.CreateKey(context.Background(), p, in)
	if err != nil {
		tb.Fatalf("create key %q: %v", in.Name, err)
	}
	return k, secret
}

// mustSettings changes settings through the service as p.
func (e *env) mustSettings(tb testing.TB, p *keyward.Principal, patch keyward.SettingsPatch) {
	tb.Helper()
	if _, err := e.svc.UpdateSettings(context.Background(), p, patch); err != nil {
		tb.Fatalf("update settings: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// problem is the RFC 9457 document of an error answer.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// checkProblem asserts an error answer is a problem document with the given
// status and code (and, for 401, a Bearer challenge).
func checkProblem(tb testing.TB, r reply, status int, code string) {
	tb.Helper()
	if r.Status != status {
		tb.Errorf("status = %d, want %d (%s)", r.Status, status, r)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Errorf("Content-Type = %q, want application/problem+json (%s)", ct, r)
	}
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		tb.Errorf("problem body is not JSON: %v (%s)", err, r)
		return
	}
	if p.Code != code || p.Status != status || p.Title == "" || p.Type == "" {
		tb.Errorf("problem = %+v, want code %q and status %d", p, code, status)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		tb.Errorf("401 without WWW-Authenticate: Bearer (got %q)", r.Header.Get("WWW-Authenticate"))
	}
}

// snapshot is everything a refused request must leave alone, per tenant: the
// keys (all their fields), the users, the settings and the number of events.
func (e *env) snapshot(tb testing.TB, roots ...*keyward.Principal) string {
	tb.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, p := range roots {
		keys, err := e.svc.ListKeys(ctx, p, keyward.KeyQuery{Sort: "id", PageSize: 200})
		if err != nil {
			tb.Fatal(err)
		}
		users, err := e.svc.ListUsers(ctx, p, keyward.UserQuery{PageSize: 200})
		if err != nil {
			tb.Fatal(err)
		}
		set, err := e.svc.GetSettings(ctx, p)
		if err != nil {
			tb.Fatal(err)
		}
		events, err := e.svc.ListEvents(ctx, p, keyward.EventQuery{PageSize: 1})
		if err != nil {
			tb.Fatal(err)
		}
		j, _ := json.Marshal(map[string]any{"keys": keys.Keys, "keys_total": keys.Total, "users": users.Users,
			"users_total": users.Total, "settings": set, "events": events.Total})
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// fixture is the cast of the authorization matrix: tenant A ("acme") with an
// admin who is also a developer (the bootstrap user), an admin without the
// developer role, a developer with a readonly and an admin key, a plain user
// with no roles (who owns a key from a time it was a developer), and a system
// user with a key; tenant B ("globex") with its own admin+developer and a key.
type fixture struct {
	*env
	tenantA, tenantB string

	adminDev, admin, dev, plain, otherAdmin person
	systemID                                string

	// rootA and rootB are sessions of each tenant's first admin that only the
	// fixture uses (to set up and to look), so that no cell can end them.
	rootA, rootB string
	bootA, bootB string // the bootstrap admin keys (secrets), never shown again
	bootAID      string
	devRO        issued // the developer's readonly key
	devAdmin     issued // the developer's admin key
	sysKey       issued
	plainKey     issued
	otherKey     issued
}

type person struct {
	ID, Email, Token string
}

type issued struct {
	ID, Secret string
}

func newFixture(tb testing.TB, o envOptions) *fixture {
	tb.Helper()
	f := &fixture{env: newEnv(tb, o)}
	a := f.mustBootstrap(tb, "acme", "ada@acme.test")
	b := f.mustBootstrap(tb, "globex", "bob@globex.test")
	f.tenantA, f.tenantB, f.bootA, f.bootB, f.bootAID = a.TenantID, b.TenantID, a.Secret, b.Secret, a.KeyID
	f.rootA, f.rootB = f.login(tb, "ada@acme.test"), f.login(tb, "bob@globex.test")
	rootA := f.principal(tb, f.rootA)
	f.mustSettings(tb, rootA, keyward.SettingsPatch{MaxKeysPerUser: ptr(1000), MaxKeysPerServiceUser: ptr(1000)})
	f.mustSettings(tb, f.principal(tb, f.rootB), keyward.SettingsPatch{MaxKeysPerUser: ptr(999)})

	f.adminDev = person{ID: a.UserID, Email: "ada@acme.test"}
	f.otherAdmin = person{ID: b.UserID, Email: "bob@globex.test"}
	f.admin = person{ID: f.mustUser(tb, rootA, "alan@acme.test", keyward.KindUser, keyward.RoleTenantAdmin).ID, Email: "alan@acme.test"}
	f.dev = person{ID: f.mustUser(tb, rootA, "dana@acme.test", keyward.KindUser, keyward.RoleDeveloper).ID, Email: "dana@acme.test"}
	f.plain = person{ID: f.mustUser(tb, rootA, "paul@acme.test", keyward.KindUser).ID, Email: "paul@acme.test"}
	f.systemID = f.mustUser(tb, rootA, "billing@acme.test", keyward.KindSystem).ID
	for _, p := range []*person{&f.adminDev, &f.admin, &f.dev, &f.plain, &f.otherAdmin} {
		p.Token = f.login(tb, p.Email)
	}

	f.issueStanding(tb)
	return f
}

// issueStanding issues the keys the callers use and the standing keys of
// the other owners.
func (f *fixture) issueStanding(tb testing.TB) {
	tb.Helper()
	devP := f.principal(tb, f.dev.Token)
	f.devRO = f.issue(tb, devP, keyward.KeyInput{Name: "dev readonly", Role: keyward.KeyRoleReadonly})
	f.devAdmin = f.issue(tb, devP, keyward.KeyInput{Name: "dev admin", Role: keyward.KeyRoleAdmin})
	f.sysKey = f.issue(tb, f.principal(tb, f.rootA), keyward.KeyInput{Name: "billing", OwnerID: f.systemID, Role: keyward.KeyRoleAdmin})
	f.plainKey = issued{ID: f.newKey(tb, ownerPlain)}
	f.otherKey = f.issue(tb, f.principal(tb, f.rootB), keyward.KeyInput{Name: "globex key"})
}

// renew gives every caller a new session and new keys, for a cell after one
// that ended them (a logout, a revocation of all keys).
func (f *fixture) renew(tb testing.TB) {
	tb.Helper()
	for _, p := range []*person{&f.adminDev, &f.admin, &f.dev, &f.plain, &f.otherAdmin} {
		p.Token = f.login(tb, p.Email)
	}
	f.issueStanding(tb)
}

func (f *fixture) issue(tb testing.TB, p *keyward.Principal, in keyward.KeyInput) issued {
	tb.Helper()
	k, secret := f.mustKey(tb, p, in)
	return issued{ID: k.ID, Secret: secret}
}

// Owners of target keys.
const (
	ownerDev      = "developer"
	ownerAdminDev = "admin+developer"
	ownerPlain    = "plain user"
	ownerSystem   = "system user"
	ownerOther    = "tenant B admin"
)

// newKey issues a fresh key for one of the fixture's owners, the way the
// contract allows it to come about, and returns its ID.
func (f *fixture) newKey(tb testing.TB, owner string) string {
	tb.Helper()
	ctx := context.Background()
	rootA := f.principal(tb, f.rootA)
	var p *keyward.Principal
	in := keyward.KeyInput{Name: "target " + owner, Role: keyward.KeyRoleAdmin, Scopes: []string{"a:read"}}
	switch owner {
	case ownerDev:
		p = f.principal(tb, f.dev.Token)
	case ownerAdminDev:
		p = rootA
	case ownerSystem:
		p, in.OwnerID = rootA, f.systemID
	case ownerOther:
		p = f.principal(tb, f.rootB)
	case ownerPlain:
		// A plain user's key comes from a time the user was a developer.
		if _, err := f.svc.UpdateUser(ctx, rootA, f.plain.ID, keyward.UserPatch{Roles: &[]string{keyward.RoleDeveloper}}); err != nil {
			tb.Fatal(err)
		}
		k, _ := f.mustKey(tb, f.principal(tb, f.plain.Token), in)
		if _, err := f.svc.UpdateUser(ctx, rootA, f.plain.ID, keyward.UserPatch{Roles: &[]string{}}); err != nil {
			tb.Fatal(err)
		}
		return k.ID
	default:
		tb.Fatalf("unknown owner %q", owner)
	}
	k, _ := f.mustKey(tb, p, in)
	return k.ID
}

// rootFor is the fixture's own admin session of the tenant that holds the owner's keys.
func (f *fixture) rootFor(tb testing.TB, owner string) *keyward.Principal {
	if owner == ownerOther {
		return f.principal(tb, f.rootB)
	}
	return f.principal(tb, f.rootA)
}

// deactivated and revoked put a fresh key in that state.
func (f *fixture) deactivated(tb testing.TB, owner string) string {
	tb.Helper()
	id := f.newKey(tb, owner)
	if _, err := f.svc.DeactivateKey(context.Background(), f.rootFor(tb, owner), id); err != nil {
		tb.Fatal(err)
	}
	return id
}

func (f *fixture) revoked(tb testing.TB, owner string) string {
	tb.Helper()
	id := f.newKey(tb, owner)
	if _, err := f.svc.RevokeKey(context.Background(), f.rootFor(tb, owner), id, nil); err != nil {
		tb.Fatal(err)
	}
	return id
}

// snapshotAll is the snapshot of both tenants.
func (f *fixture) snapshotAll(tb testing.TB) string {
	tb.Helper()
	return f.snapshot(tb, f.principal(tb, f.rootA), f.principal(tb, f.rootB))
}
