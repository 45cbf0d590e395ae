package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/api"
	"github.com/keyward/keyward/api/openapitest"
)

// TestMain removes the binary that signal_test.go builds once per run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// --- the OpenAPI validator every HTTP call goes through

var (
	validatorOnce sync.Once
	validator     *openapitest.Validator
)

func mustValidator(tb testing.TB) *openapitest.Validator {
	tb.Helper()
	validatorOnce.Do(func() { validator = openapitest.New(tb, api.OpenAPIDocument) })
	if validator == nil {
		tb.Fatal("no OpenAPI validator")
	}
	return validator
}

// --- a log buffer safe for the server's goroutines

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// --- recording every exchange and every credential issued

// exchange is one HTTP response seen by a client, kept for the secret scan.
type exchange struct {
	seq    int
	method string
	path   string
	status int
	header http.Header
	body   []byte
}

// issued is a secret or session token and the exchange that issued it (-1:
// issued outside HTTP, by admin bootstrap).
type issued struct {
	kind  string // "secret" or "token"
	value string
	seq   int
	where string
}

// recorder keeps every exchange of a test, across server restarts.
type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
	issued    []issued
}

func (r *recorder) add(req *http.Request, resp *http.Response, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ex := exchange{seq: len(r.exchanges), method: req.Method, path: req.URL.RequestURI(), status: resp.StatusCode,
		header: resp.Header.Clone(), body: body}
	r.exchanges = append(r.exchanges, ex)
	// Anything that looks like a credential handed out is remembered with
	// the response that handed it out.
	var obj map[string]any
	if json.Unmarshal(body, &obj) != nil {
		return
	}
	for _, field := range []string{"secret", "token"} {
		if v, ok := obj[field].(string); ok && v != "" {
			kind := field
			r.issued = append(r.issued, issued{kind: kind, value: v, seq: ex.seq, where: req.Method + " " + ex.path})
		}
	}
}

func (r *recorder) issue(kind, value, where string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.issued = append(r.issued, issued{kind: kind, value: value, seq: -1, where: where})
}

func (r *recorder) snapshot() ([]exchange, []issued) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.exchanges), slices.Clone(r.issued)
}

type recordingTransport struct {
	rec  *recorder
	base http.RoundTripper
}

func (t recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	t.rec.add(req, resp, body)
	return resp, nil
}

// --- the client

// client speaks HTTP to one server; every response is checked against the
// OpenAPI document and recorded.
type client struct {
	base      string
	rec       *recorder
	transport http.RoundTripper
	userAgent string
}

func newClient(base string, rec *recorder) *client {
	return &client{base: base, rec: rec, transport: http.DefaultTransport, userAgent: "keyward-e2e"}
}

// httpClient is the one place where the OpenAPI check plugs in.
func (c *client) httpClient(tb testing.TB) *http.Client {
	return &http.Client{Transport: recordingTransport{rec: c.rec, base: mustValidator(tb).Transport(tb, c.transport)}}
}

// response is a received answer with its body read.
type response struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

func (r *response) String() string {
	return fmt.Sprintf("%s %s → %d %s", r.method, r.path, r.status, bytes.TrimSpace(r.body))
}

// do sends one request with cred, if any, as a bearer token. body: nil for
// none, string or []byte as is, else JSON.
func (c *client) do(tb testing.TB, method, path, cred string, body any) *response {
	tb.Helper()
	var h http.Header
	if cred != "" {
		h = http.Header{"Authorization": {"Bearer " + cred}}
	}
	return c.send(tb, method, path, h, body)
}

// send sends one request with these headers.
func (c *client) send(tb testing.TB, method, path string, header http.Header, body any) *response {
	tb.Helper()
	r, err := c.trySend(tb, method, path, header, body)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// trySend is send for other goroutines than the test's: it returns errors.
func (c *client) trySend(tb testing.TB, method, path string, header http.Header, body any) (*response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", c.userAgent)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.httpClient(tb).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %v", method, path, err)
	}
	return &response{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// must sends a request, requires the status and decodes the body into out.
func (c *client) must(tb testing.TB, want int, method, path, cred string, body, out any) *response {
	tb.Helper()
	r := c.do(tb, method, path, cred, body)
	if r.status != want {
		tb.Fatalf("want %d, got %s", want, r)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			tb.Fatalf("%s: decode: %v", r, err)
		}
	}
	return r
}

// problem is an RFC 9457 problem document of the contract.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// fail sends a request that must be refused with status and code.
func (c *client) fail(tb testing.TB, status int, code, method, path, cred string, body any) problem {
	tb.Helper()
	r := c.do(tb, method, path, cred, body)
	return wantProblem(tb, r, status, code)
}

func wantProblem(tb testing.TB, r *response, status int, code string) problem {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("want %d %s, got %s", status, code, r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		tb.Errorf("%s: Content-Type %q, want application/problem+json", r, ct)
	}
	var p problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		tb.Fatalf("%s: decode problem: %v", r, err)
	}
	if p.Code != code || p.Status != status {
		tb.Fatalf("want %d %s, got %s", status, code, r)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		tb.Errorf("%s: WWW-Authenticate %q, want Bearer", r, r.header.Get("WWW-Authenticate"))
	}
	return p
}

// --- the contract's objects, as a client reads them

type apiUser struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Roles     []string  `json:"roles"`
	Licensed  bool      `json:"licensed"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type apiKey struct {
	ID           string         `json:"id"`
	TenantID     string         `json:"tenant_id"`
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	OwnerID      string         `json:"owner_id"`
	OwnerName    string         `json:"owner_name"`
	OwnerEmail   string         `json:"owner_email"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Scopes       []string       `json:"scopes"`
	Meta         map[string]any `json:"meta"`
	Status       string         `json:"status"`
	Start        string         `json:"start"`
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	ExpiresAt    *time.Time     `json:"expires_at"`
	LastUsedAt   *time.Time     `json:"last_used_at"`
	RevokedAt    *time.Time     `json:"revoked_at"`
	RevokedBy    *string        `json:"revoked_by"`
	RevokeReason *string        `json:"revoke_reason"`
	Secret       string         `json:"secret,omitempty"`
}

type keyList struct {
	Keys          []apiKey `json:"keys"`
	NextPageToken *string  `json:"next_page_token"`
	Total         int      `json:"total"`
}

type userList struct {
	Users         []apiUser `json:"users"`
	NextPageToken *string   `json:"next_page_token"`
	Total         int       `json:"total"`
}

type apiRef struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

type apiEvent struct {
	ID        string         `json:"id"`
	Time      time.Time      `json:"time"`
	TenantID  string         `json:"tenant_id"`
	Action    string         `json:"action"`
	Actor     apiRef         `json:"actor"`
	Target    apiRef         `json:"target"`
	IP        string         `json:"ip"`
	UserAgent string         `json:"user_agent"`
	Details   map[string]any `json:"details"`
}

type eventList struct {
	Events        []apiEvent `json:"events"`
	NextPageToken *string    `json:"next_page_token"`
	Total         int        `json:"total"`
}

type apiSettings struct {
	APIKeysEnabled        bool   `json:"api_keys_enabled"`
	MaxExpirationDays     *int   `json:"max_expiration_days"`
	MaxKeysPerUser        int    `json:"max_keys_per_user"`
	MaxKeysPerServiceUser int    `json:"max_keys_per_service_user"`
	ExpiryNoticeDays      int    `json:"expiry_notice_days"`
	KeyPrefix             string `json:"key_prefix"`
}

type verifyAnswer struct {
	Valid bool   `json:"valid"`
	Code  string `json:"code"`
	Key   *struct {
		ID        string         `json:"id"`
		TenantID  string         `json:"tenant_id"`
		Name      string         `json:"name"`
		OwnerID   string         `json:"owner_id"`
		Type      string         `json:"type"`
		Role      string         `json:"role"`
		Scopes    []string       `json:"scopes"`
		Meta      map[string]any `json:"meta"`
		ExpiresAt *time.Time     `json:"expires_at"`
	} `json:"key"`
}

type loginAnswer struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      apiUser   `json:"user"`
}

type meAnswer struct {
	User   apiUser `json:"user"`
	Tenant struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"tenant"`
	Key *apiKey `json:"key"`
}

// --- calls of the contract

func (c *client) login(tb testing.TB, email, password string) loginAnswer {
	tb.Helper()
	var out loginAnswer
	c.must(tb, http.StatusCreated, "POST", "/v1/sessions", "", map[string]string{"email": email, "password": password}, &out)
	if out.Token == "" || out.User.Email != email {
		tb.Fatalf("login %s: token %q, user %+v", email, out.Token, out.User)
	}
	return out
}

func (c *client) createUser(tb testing.TB, cred string, in map[string]any) apiUser {
	tb.Helper()
	var u apiUser
	c.must(tb, http.StatusCreated, "POST", "/v1/users", cred, in, &u)
	return u
}

func (c *client) createKey(tb testing.TB, cred string, in map[string]any) apiKey {
	tb.Helper()
	var k apiKey
	c.must(tb, http.StatusCreated, "POST", "/v1/keys", cred, in, &k)
	if k.Secret == "" || k.ID == "" || !strings.HasPrefix(k.Secret, k.Start) {
		tb.Fatalf("created key %+v: want an id, a secret and a start that begins it", k)
	}
	return k
}

func (c *client) getKey(tb testing.TB, cred, id string) apiKey {
	tb.Helper()
	var k apiKey
	r := c.must(tb, http.StatusOK, "GET", "/v1/keys/"+id, cred, nil, &k)
	noSecretField(tb, r)
	return k
}

func (c *client) keyAction(tb testing.TB, cred, id, action string, body any) apiKey {
	tb.Helper()
	var k apiKey
	c.must(tb, http.StatusOK, "POST", "/v1/keys/"+id+"/"+action, cred, body, &k)
	if k.ID != id {
		tb.Fatalf("%s %s answered key %s", action, id, k.ID)
	}
	return k
}

func (c *client) rotate(tb testing.TB, cred, id string, graceSeconds *int) apiKey {
	tb.Helper()
	var body any
	if graceSeconds != nil {
		body = map[string]any{"grace_period_seconds": *graceSeconds}
	}
	var k apiKey
	c.must(tb, http.StatusCreated, "POST", "/v1/keys/"+id+"/rotate", cred, body, &k)
	if k.Secret == "" || k.ID == id {
		tb.Fatalf("rotate %s: want a new key with a secret, got %+v", id, k)
	}
	return k
}

func (c *client) verify(tb testing.TB, secret string) verifyAnswer {
	tb.Helper()
	var v verifyAnswer
	c.must(tb, http.StatusOK, "POST", "/v1/keys/verify", "", map[string]string{"key": secret}, &v)
	if v.Valid != (v.Code == "VALID") {
		tb.Fatalf("verify: valid %v with code %s", v.Valid, v.Code)
	}
	return v
}

// wantVerify verifies secret and requires code; for a found key, also its id.
func (c *client) wantVerify(tb testing.TB, secret, code, keyID string) {
	tb.Helper()
	v := c.verify(tb, secret)
	if v.Code != code {
		tb.Fatalf("verify key %s: got %s, want %s", keyID, v.Code, code)
	}
	switch code {
	case "NOT_FOUND":
		if v.Key != nil {
			tb.Errorf("verify NOT_FOUND names a key: %+v", v.Key)
		}
	default:
		if v.Key == nil || v.Key.ID != keyID {
			tb.Errorf("verify %s: want key %s in the answer, got %+v", code, keyID, v.Key)
		}
	}
}

func (c *client) settings(tb testing.TB, cred string, patch map[string]any) apiSettings {
	tb.Helper()
	var s apiSettings
	if patch == nil {
		c.must(tb, http.StatusOK, "GET", "/v1/settings", cred, nil, &s)
	} else {
		c.must(tb, http.StatusOK, "PATCH", "/v1/settings", cred, patch, &s)
	}
	return s
}

func (c *client) listKeys(tb testing.TB, cred string, q url.Values) keyList {
	tb.Helper()
	var l keyList
	r := c.must(tb, http.StatusOK, "GET", "/v1/keys?"+q.Encode(), cred, nil, &l)
	noSecretField(tb, r)
	return l
}

// allKeys pages through a key listing and returns every key in order.
func (c *client) allKeys(tb testing.TB, cred string, q url.Values, pageSize int) []apiKey {
	tb.Helper()
	q = cloneValues(q)
	q.Set("page_size", fmt.Sprint(pageSize))
	var all []apiKey
	total := -1
	for pages := 0; ; pages++ {
		if pages > 1000 {
			tb.Fatal("listing keys does not end")
		}
		l := c.listKeys(tb, cred, q)
		if total >= 0 && l.Total != total {
			tb.Fatalf("total changed between pages: %d then %d", total, l.Total)
		}
		total = l.Total
		if len(l.Keys) > pageSize {
			tb.Fatalf("page of %d keys for page_size %d", len(l.Keys), pageSize)
		}
		all = append(all, l.Keys...)
		if l.NextPageToken == nil {
			break
		}
		if len(l.Keys) == 0 {
			tb.Fatal("an empty page with a next_page_token")
		}
		q.Set("page_token", *l.NextPageToken)
	}
	if len(all) != total {
		tb.Fatalf("listed %d keys, total says %d", len(all), total)
	}
	return all
}

func (c *client) events(tb testing.TB, cred string, q url.Values) []apiEvent {
	tb.Helper()
	q = cloneValues(q)
	q.Set("page_size", "200")
	var all []apiEvent
	total := -1
	for pages := 0; ; pages++ {
		if pages > 1000 {
			tb.Fatal("listing events does not end")
		}
		var l eventList
		c.must(tb, http.StatusOK, "GET", "/v1/events?"+q.Encode(), cred, nil, &l)
		total = l.Total
		all = append(all, l.Events...)
		if l.NextPageToken == nil {
			break
		}
		q.Set("page_token", *l.NextPageToken)
	}
	if len(all) != total {
		tb.Fatalf("listed %d events, total says %d", len(all), total)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Time.After(all[i-1].Time) {
			tb.Fatalf("events not newest first: %s at %s after %s at %s", all[i-1].Action, all[i-1].Time, all[i].Action, all[i].Time)
		}
	}
	return all
}

// waitLastUsed polls a key until its last_used_at is set (every 50 ms, up to
// the contract's 10 seconds).
func (c *client) waitLastUsed(tb testing.TB, cred, id string) time.Time {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		k := c.getKey(tb, cred, id)
		if k.LastUsedAt != nil {
			return *k.LastUsedAt
		}
		if time.Now().After(deadline) {
			tb.Fatalf("key %s: last_used_at still null 10 s after use", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noSecretField fails if a response other than create or rotate holds a
// "secret" member anywhere.
func noSecretField(tb testing.TB, r *response) {
	tb.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		return
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["secret"]; ok {
				return true
			}
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		case []any:
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	if walk(v) {
		tb.Errorf("%s: response holds a secret field", r)
	}
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

func ids(keys []apiKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func sortedIDs(keys []apiKey) []string {
	out := ids(keys)
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func ptr[T any](v T) *T { return &v }

// --- a running server

// server is a Main started in-process on a SQLite file, with its log kept.
type server struct {
	dir    string
	db     string
	pepper string // the pepper file given to Main and bootstrap ("" for SQLite: the data folder's)
	m      *Main
	log    *syncBuffer
	rec    *recorder
	c      *client
	closed bool
	// tenants bootstrapped through newTenant, for the secret scan.
	tenants []*tenant
}

// serverOpts tune a test server; zero values get the defaults below.
type serverOpts struct {
	UsageInterval time.Duration    // default 50 ms
	SweepInterval time.Duration    // default an hour: expiry sweeps only at start, so event lists are deterministic
	Now           func() time.Time // default the real clock
	DB            string           // default SQLite in the test's folder; a postgres:// URL for PostgreSQL
	Redis         string           // --redis; default none
}

// startServer starts Main on 127.0.0.1:0 over dir/k.db.
func startServer(tb testing.TB, dir string, rec *recorder, o serverOpts) *server {
	tb.Helper()
	if o.UsageInterval == 0 {
		o.UsageInterval = 50 * time.Millisecond
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = time.Hour
	}
	s := &server{dir: dir, db: "sqlite:" + filepath.Join(dir, "k.db"), log: &syncBuffer{}, rec: rec}
	if o.DB != "" {
		s.db, s.pepper = o.DB, filepath.Join(dir, "pepper")
		if _, err := os.Stat(s.pepper); err != nil {
			if err := os.WriteFile(s.pepper, []byte(strings.Repeat("pepper-for-tests-", 4)), 0o600); err != nil {
				tb.Fatal(err)
			}
		}
	}
	s.m = &Main{
		Addr:           "127.0.0.1:0",
		DB:             s.db,
		PepperFile:     s.pepper,
		Redis:          o.Redis,
		Logger:         slog.New(slog.NewJSONHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		PasswordParams: &keyward.PasswordParams{Memory: 64, Time: 1, Threads: 1},
		UsageInterval:  o.UsageInterval,
		SweepInterval:  o.SweepInterval,
		Now:            o.Now,
		// High enough that the flows' failed verifications never hit it.
		VerifyFailureLimit: 10000,
	}
	if err := s.m.Run(context.Background()); err != nil {
		tb.Fatalf("Main.Run: %v", err)
	}
	s.c = newClient(s.m.URL, rec)
	tb.Cleanup(func() { s.close(tb) })
	return s
}

func (s *server) close(tb testing.TB) {
	tb.Helper()
	if s.closed {
		return
	}
	s.closed = true
	if err := s.m.Close(); err != nil {
		tb.Errorf("Main.Close: %v", err)
	}
}

// tenant is a tenant bootstrapped by the real command, with its first admin.
type tenant struct {
	ID         string
	Name       string
	AdminID    string
	AdminEmail string
	Password   string
	AdminKey   string // the bootstrap key's secret
	AdminKeyID string
	Session    string // the admin's session token
	domain     string // for unique emails
}

// bootstrapOut is the one line of `admin bootstrap --json`.
type bootstrapOut struct {
	TenantID string `json:"tenant_id"`
	UserID   string `json:"user_id"`
	KeyID    string `json:"key_id"`
	Secret   string `json:"secret"`
}

// runCmd runs the command line in-process and returns its exit code and streams.
func runCmd(tb testing.TB, stdin string, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// mustBootstrap runs `keyward admin bootstrap --json --password-stdin` and
// decodes its one line.
func mustBootstrap(tb testing.TB, rec *recorder, db, tenantName, email, password string, extra ...string) bootstrapOut {
	tb.Helper()
	args := append([]string{"admin", "bootstrap", "--db", db, "--tenant", tenantName,
		"--email", email, "--password-stdin", "--json"}, extra...)
	code, stdout, stderr := runCmd(tb, password+"\n", args...)
	if code != 0 {
		tb.Fatalf("bootstrap %s/%s: exit %d, stderr %q", tenantName, email, code, stderr)
	}
	var out bootstrapOut
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		tb.Fatalf("bootstrap --json printed %q: %v", stdout, err)
	}
	if rec != nil {
		rec.issue("secret", out.Secret, "admin bootstrap "+email)
	}
	return out
}

// newTenant bootstraps a tenant on the server's database while it runs and
// logs its admin in.
func (s *server) newTenant(tb testing.TB, name string) *tenant {
	tb.Helper()
	domain := strings.ToLower(name) + ".example"
	t := &tenant{Name: name, AdminEmail: "admin@" + domain, Password: "correct horse " + name, domain: domain}
	var extra []string
	if s.pepper != "" {
		extra = []string{"--pepper-file", s.pepper}
	}
	out := mustBootstrap(tb, s.rec, s.db, name, t.AdminEmail, t.Password, extra...)
	t.ID, t.AdminID, t.AdminKeyID, t.AdminKey = out.TenantID, out.UserID, out.KeyID, out.Secret
	t.Session = s.c.login(tb, t.AdminEmail, t.Password).Token
	s.tenants = append(s.tenants, t)
	return t
}

func (t *tenant) email(local string) string { return local + "@" + t.domain }

// assertNoLeaks checks that no secret or session token issued so far appears
// in any response but the one that issued it, in the logs, in the events
// (read beforehand, as JSON) or in the database files of dbDir.
func assertNoLeaks(tb testing.TB, rec *recorder, logs map[string]string, events []byte, dbDir string) {
	tb.Helper()
	exchanges, secrets := rec.snapshot()
	if len(secrets) == 0 {
		tb.Fatal("secret scan: no secret was issued")
	}
	for name, l := range logs {
		if l == "" {
			tb.Errorf("secret scan: %s is empty", name)
		}
	}
	files := map[string][]byte{}
	if dbDir != "" {
		matches, _ := filepath.Glob(filepath.Join(dbDir, "k.db*"))
		for _, f := range matches {
			b, err := os.ReadFile(f)
			if err != nil {
				tb.Fatal(err)
			}
			files[filepath.Base(f)] = b
		}
		if len(files) == 0 {
			tb.Fatalf("secret scan: no database files in %s", dbDir)
		}
	}
	for _, s := range secrets {
		// The secret whole, and its random part without the prefix.
		needles := []string{s.value}
		if i := strings.IndexByte(s.value, '_'); i >= 0 && len(s.value)-i > 20 {
			needles = append(needles, s.value[i+1:])
		}
		for _, n := range needles {
			for _, ex := range exchanges {
				if ex.seq == s.seq {
					continue
				}
				if bytes.Contains(ex.body, []byte(n)) {
					tb.Errorf("%s issued by %s appears in the response to %s %s (%d)", s.kind, s.where, ex.method, ex.path, ex.status)
				}
				for h, vs := range ex.header {
					for _, v := range vs {
						if strings.Contains(v, n) {
							tb.Errorf("%s issued by %s appears in header %s of %s %s", s.kind, s.where, h, ex.method, ex.path)
						}
					}
				}
			}
			for name, l := range logs {
				if strings.Contains(l, n) {
					tb.Errorf("%s issued by %s appears in %s", s.kind, s.where, name)
				}
			}
			if bytes.Contains(events, []byte(n)) {
				tb.Errorf("%s issued by %s appears in an event", s.kind, s.where)
			}
			for name, b := range files {
				if bytes.Contains(b, []byte(n)) {
					tb.Errorf("%s issued by %s is stored in the database file %s", s.kind, s.where, name)
				}
			}
		}
		// The issuing response itself holds it, else the scan proves nothing.
		if s.seq >= 0 && !bytes.Contains(exchanges[s.seq].body, []byte(s.value)) {
			tb.Errorf("secret scan: the response of %s does not hold the %s it issued", s.where, s.kind)
		}
	}
	tb.Logf("secret scan: %d secrets and tokens against %d responses, %d log bytes, %d event bytes, %d database files",
		len(secrets), len(exchanges), totalLen(logs), len(events), len(files))
}

func totalLen(m map[string]string) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}
