package main

// Forward authentication behind a real nginx: the configuration block of
// docs/gateways.md, run by the Debian package's nginx in front of Keyward's
// /v1/auth (Main, in-process) and a small upstream that echoes what it
// receives. Everything speaks real HTTP over 127.0.0.1.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// nginxFailureLimit is Keyward's per-address failure limit in this test: high
// enough for the scenarios before the lockout, low enough to reach quickly.
const nginxFailureLimit = 40

func TestNginxForwardAuth(t *testing.T) {
	bin := nginxBinary(t)
	snippet := gatewaysSnippet(t)

	rec := &recorder{}
	srv := startNginxKeyward(t, rec)
	tn := srv.newTenant(t, "Gateway")
	c := srv.c

	// The upstream nginx protects.
	app := newEchoApp(t)

	ngx := startNginx(t, bin, snippet, srv.m.URL, app.srv.URL)
	g := &gatewayClient{base: ngx.url, app: app}

	// Keys, all owned by a system user of the tenant.
	sys := c.createUser(t, tn.Session, map[string]any{"email": tn.email("svc"), "name": "Gateway service", "kind": "system", "roles": []string{}})
	admin := c.createKey(t, tn.Session, map[string]any{"name": "admin", "owner_id": sys.ID, "role": "admin",
		"scopes": []string{"invoices:read", "invoices:write"}})
	readonly := c.createKey(t, tn.Session, map[string]any{"name": "readonly", "owner_id": sys.ID, "role": "readonly"})
	reader := c.createKey(t, tn.Session, map[string]any{"name": "invoice-reader", "owner_id": sys.ID, "role": "readonly",
		"scopes": []string{"invoices:read"}})
	doomed := c.createKey(t, tn.Session, map[string]any{"name": "doomed", "owner_id": sys.ID, "role": "admin"})
	limited := c.createKey(t, tn.Session, map[string]any{"name": "limited", "owner_id": sys.ID, "role": "readonly",
		"rate_limit": map[string]any{"limit": 2, "window_seconds": 3600}})
	bearer := func(k apiKey) http.Header { return http.Header{"Authorization": {"Bearer " + k.Secret}} }
	wantIdentity := func(k apiKey, scopes string) map[string]string {
		id := map[string]string{"X-Keyward-Key-Id": k.ID, "X-Keyward-Tenant-Id": tn.ID, "X-Keyward-Owner-Id": sys.ID,
			"X-Keyward-Key-Role": k.Role}
		if scopes != "" { // nginx sends no header for an empty value
			id["X-Keyward-Key-Scopes"] = scopes
		}
		return id
	}

	t.Run("NoKey", func(t *testing.T) {
		r := g.refused(t, 401, "GET", "/api/things", nil, "")
		if r.header.Get("X-Keyward-Code") != keyward.CodeNotFound {
			t.Errorf("X-Keyward-Code %q, want %s", r.header.Get("X-Keyward-Code"), keyward.CodeNotFound)
		}
		// Spoofed identity headers without a key change nothing.
		g.refused(t, 401, "GET", "/api/things", http.Header{"X-Keyward-Key-Id": {admin.ID}, "X-Keyward-Tenant-Id": {tn.ID},
			"X-Keyward-Key-Role": {"admin"}}, "")
		g.refused(t, 401, "GET", "/api/things", http.Header{"Authorization": {"Bearer kw_not-a-key"}}, keyward.CodeNotFound)
	})

	t.Run("ValidKey", func(t *testing.T) {
		s := g.passed(t, "GET", "/api/things?page=2", bearer(admin), nil)
		if s.Method != "GET" || s.URI != "/api/things?page=2" {
			t.Errorf("upstream saw %s %s, want GET /api/things?page=2", s.Method, s.URI)
		}
		wantHeaders(t, s, wantIdentity(admin, "invoices:read,invoices:write"))
		if s.Authorization != "Bearer "+admin.Secret {
			t.Errorf("upstream saw Authorization %q, want the client's", s.Authorization)
		}
		// Keyward sends the scopes header even when it is empty; nginx then
		// sends none to the upstream.
		direct := directAuth(t, srv.m.URL, "", bearer(readonly))
		if v, ok := direct.Header["X-Keyward-Key-Scopes"]; direct.StatusCode != 200 || !ok || len(v) != 1 || v[0] != "" {
			t.Errorf("direct /v1/auth for a key without scopes: %d, X-Keyward-Key-Scopes %q", direct.StatusCode, v)
		}
		wantHeaders(t, g.passed(t, "GET", "/api/things", bearer(readonly), nil), wantIdentity(readonly, ""))
	})

	t.Run("SpoofedIdentity", func(t *testing.T) {
		// A readonly key claiming to be someone else's admin key: the upstream
		// sees Keyward's answer only.
		h := bearer(readonly)
		h.Set("X-Keyward-Key-Id", admin.ID)
		h.Set("X-Keyward-Tenant-Id", "ten_someone_else")
		h.Set("X-Keyward-Owner-Id", "usr_someone_else")
		h.Set("X-Keyward-Key-Role", "admin")
		h.Set("X-Keyward-Key-Scopes", "invoices:read,invoices:write")
		wantHeaders(t, g.passed(t, "GET", "/api/things", h, nil), wantIdentity(readonly, ""))
		// And the admin route still refuses it.
		g.refused(t, 403, "GET", "/admin/panel", h, keyward.CodeForbidden)
		// On a public route the upstream gets no identity at all.
		h = http.Header{"X-Keyward-Key-Id": {admin.ID}, "X-Keyward-Key-Role": {"admin"}}
		wantHeaders(t, g.passed(t, "GET", "/healthz", h, nil), map[string]string{})
	})

	t.Run("XAPIKey", func(t *testing.T) {
		s := g.passed(t, "GET", "/api/things", http.Header{"X-Api-Key": {reader.Secret}}, nil)
		wantHeaders(t, s, wantIdentity(reader, "invoices:read"))
		// Basic credentials for the upstream in Authorization, the key in X-API-Key.
		s = g.passed(t, "GET", "/api/things", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}, "X-Api-Key": {admin.Secret}}, nil)
		wantHeaders(t, s, wantIdentity(admin, "invoices:read,invoices:write"))
		if s.Authorization != "Basic dXNlcjpwYXNz" {
			t.Errorf("upstream saw Authorization %q, want the client's Basic credentials", s.Authorization)
		}
		g.refused(t, 401, "GET", "/api/things", http.Header{"X-Api-Key": {doomed.Secret + "x"}}, keyward.CodeNotFound)
	})

	t.Run("MethodsAndBody", func(t *testing.T) {
		// The check is a GET whatever the client's method, and the body goes
		// to the upstream only.
		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			s := g.passed(t, m, "/api/things", bearer(readonly), []byte(`{"amount": 42}`))
			if s.Method != m || s.Body != `{"amount": 42}` {
				t.Errorf("%s: upstream saw %s with body %q", m, s.Method, s.Body)
			}
			wantHeaders(t, s, wantIdentity(readonly, ""))
		}
		s := g.passed(t, "HEAD", "/api/things", bearer(readonly), nil)
		if s.Method != "HEAD" {
			t.Errorf("HEAD: upstream saw %s", s.Method)
		}
		g.refused(t, 401, "POST", "/api/things", nil, keyward.CodeNotFound)
	})

	t.Run("RequireRole", func(t *testing.T) {
		r := g.refused(t, 403, "GET", "/admin/panel", bearer(readonly), keyward.CodeForbidden)
		if r.header.Get("WWW-Authenticate") != "" {
			t.Errorf("403 with WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
		}
		g.refused(t, 403, "GET", "/admin/panel", http.Header{"X-Api-Key": {reader.Secret}}, keyward.CodeForbidden)
		wantHeaders(t, g.passed(t, "GET", "/admin/panel", bearer(admin), nil), wantIdentity(admin, "invoices:read,invoices:write"))
		g.refused(t, 401, "GET", "/admin/panel", nil, keyward.CodeNotFound)
	})

	t.Run("RequireScopes", func(t *testing.T) {
		g.refused(t, 403, "GET", "/invoices/2024", bearer(readonly), keyward.CodeForbidden)
		g.refused(t, 403, "GET", "/invoices/2024", bearer(doomed), keyward.CodeForbidden) // admin, but no scopes
		wantHeaders(t, g.passed(t, "GET", "/invoices/2024", bearer(reader), nil), wantIdentity(reader, "invoices:read"))
		wantHeaders(t, g.passed(t, "GET", "/invoices/2024", bearer(admin), nil), wantIdentity(admin, "invoices:read,invoices:write"))
	})

	t.Run("StateChanges", func(t *testing.T) {
		// Each change made through the API holds on the very next request
		// through nginx.
		g.passed(t, "GET", "/api/things", bearer(doomed), nil)
		c.keyAction(t, tn.Session, doomed.ID, "deactivate", nil)
		g.refused(t, 401, "GET", "/api/things", bearer(doomed), keyward.CodeInactive)
		c.keyAction(t, tn.Session, doomed.ID, "reactivate", nil)
		wantHeaders(t, g.passed(t, "GET", "/api/things", bearer(doomed), nil), wantIdentity(doomed, ""))
		c.keyAction(t, tn.Session, doomed.ID, "revoke", map[string]any{"reason": "leaked"})
		r := g.refused(t, 401, "GET", "/api/things", bearer(doomed), keyward.CodeRevoked)
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 with WWW-Authenticate %q, want Bearer", r.header.Get("WWW-Authenticate"))
		}
		g.refused(t, 401, "GET", "/api/things", http.Header{"X-Api-Key": {doomed.Secret}}, keyward.CodeRevoked)
		g.refused(t, 401, "GET", "/admin/panel", bearer(doomed), keyward.CodeRevoked)

		// The tenant switch, both ways.
		c.settings(t, tn.Session, map[string]any{"api_keys_enabled": false})
		g.refused(t, 401, "GET", "/api/things", bearer(admin), keyward.CodeKeysDisabled)
		c.settings(t, tn.Session, map[string]any{"api_keys_enabled": true})
		g.passed(t, "GET", "/api/things", bearer(admin), nil)
	})

	t.Run("PerKeyRateLimit", func(t *testing.T) {
		// Plain auth_request would answer 500; the snippet's error_page gives 429.
		g.passed(t, "GET", "/api/things", bearer(limited), nil)
		g.passed(t, "GET", "/api/things", bearer(limited), nil)
		r := g.refused(t, 429, "GET", "/api/things", bearer(limited), keyward.CodeRateLimited)
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", r)
		}
		// Other keys are not affected.
		g.passed(t, "GET", "/api/things", bearer(readonly), nil)
	})

	t.Run("FailureLimit", func(t *testing.T) {
		// Keyward counts failures per client address; behind nginx that is
		// nginx's address, so failing clients share one counter.
		var r *gatewayResponse
		for i := 0; i <= 2*nginxFailureLimit+2; i++ {
			r = g.send(t, "GET", "/api/things", http.Header{"Authorization": {"Bearer kw_wrong"}}, nil)
			if r.status != 401 {
				break
			}
		}
		if r.status != 429 || r.header.Get("X-Keyward-Code") != keyward.CodeRateLimited || r.header.Get("Retry-After") == "" {
			t.Fatalf("after %d failures: %s, X-Keyward-Code %q, Retry-After %q; want 429 RATE_LIMITED with Retry-After\nbody: %s",
				nginxFailureLimit, r, r.header.Get("X-Keyward-Code"), r.header.Get("Retry-After"), r.body)
		}
		if r.upstreamReached {
			t.Error("a throttled request reached the upstream")
		}
		g.refused(t, 429, "GET", "/api/things", nil, keyward.CodeRateLimited)
		// Valid keys are never locked out.
		wantHeaders(t, g.passed(t, "GET", "/api/things", bearer(admin), nil), wantIdentity(admin, "invoices:read,invoices:write"))
		wantHeaders(t, g.passed(t, "GET", "/admin/panel", bearer(admin), nil), wantIdentity(admin, "invoices:read,invoices:write"))
	})

	t.Run("ChecksAreGETs", func(t *testing.T) {
		// Whatever the client's method, Keyward saw GET /v1/auth (a HEAD or
		// an OPTIONS would not do: /v1/auth serves no OPTIONS).
		methods := map[string]int{}
		for _, line := range strings.Split(srv.log.String(), "\n") {
			var l struct{ Msg, Method, Path string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" && l.Path == "/v1/auth" {
				methods[l.Method]++
			}
		}
		if len(methods) != 1 || methods["GET"] < 50 {
			t.Errorf("Keyward saw /v1/auth with methods %v, want GET only (and many)", methods)
		}
	})

	t.Run("SecretScan", func(t *testing.T) {
		events := collectEvents(t, c, srv.tenants)
		logs := map[string]string{"the server log": srv.log.String()}
		for _, f := range []string{"access.log", "error.log"} {
			b, err := os.ReadFile(filepath.Join(ngx.dir, f))
			if err != nil {
				t.Fatal(err)
			}
			logs["nginx's "+f] = string(b)
		}
		assertNoLeaks(t, rec, logs, events, srv.dir)
	})

	t.Run("KeywardDown", func(t *testing.T) {
		// Keyward unreachable: nginx fails closed.
		srv.close(t)
		g.refused(t, 500, "GET", "/api/things", bearer(admin), "")
		g.refused(t, 500, "GET", "/admin/panel", bearer(admin), "")
		wantHeaders(t, g.passed(t, "GET", "/healthz", nil, nil), map[string]string{})
	})

	t.Run("ErrorLog", func(t *testing.T) {
		// nginx logged nothing it should not have: no warnings (an
		// uninitialized variable, say), and errors only for the refusals
		// above that plain auth_request counts as errors.
		b, err := os.ReadFile(filepath.Join(ngx.dir, "error.log"))
		if err != nil {
			t.Fatal(err)
		}
		expected := []string{"auth request unexpected status: 429", "auth request unexpected status: 502",
			"connect() failed (111: Connection refused) while connecting to upstream"}
		for _, line := range strings.Split(string(b), "\n") {
			switch {
			case strings.Contains(line, "[error]"):
				if !slices.ContainsFunc(expected, func(e string) bool { return strings.Contains(line, e) }) {
					t.Errorf("nginx error log: %s", line)
				}
			case strings.Contains(line, "[warn]"), strings.Contains(line, "[crit]"), strings.Contains(line, "[alert]"),
				strings.Contains(line, "[emerg]"):
				t.Errorf("nginx error log: %s", line)
			}
		}
	})
}

// --- finding nginx and its configuration

// nginxBinary finds nginx on PATH or at /usr/sbin/nginx (not on a user's
// PATH on Debian). Missing, the test skips, unless KEYWARD_TEST_REQUIRE=1.
func nginxBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if fi, serr := os.Stat("/usr/sbin/nginx"); serr == nil && !fi.IsDir() {
			bin, err = "/usr/sbin/nginx", nil
		}
	}
	if err == nil {
		var out []byte
		out, err = exec.Command(bin, "-V").CombinedOutput()
		if err == nil && !bytes.Contains(out, []byte("--with-http_auth_request_module")) {
			err = fmt.Errorf("%s is built without ngx_http_auth_request_module", bin)
		}
	}
	if err != nil {
		msg := fmt.Sprintf("nginx is needed for this test (apt-get install nginx): %v", err)
		if os.Getenv("KEYWARD_TEST_REQUIRE") == "1" {
			t.Fatal(msg + " (KEYWARD_TEST_REQUIRE=1)")
		}
		t.Skip(msg)
	}
	return bin
}

// gatewaysSnippet is the nginx block of docs/gateways.md, the one right after
// the "<!-- tested: nginx -->" line.
func gatewaysSnippet(t *testing.T) string {
	t.Helper()
	const doc = "../../docs/gateways.md"
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- tested: nginx -->\n```nginx\n")
	if !ok {
		t.Fatalf("%s: no ```nginx block right after <!-- tested: nginx -->", doc)
	}
	block, _, ok := strings.Cut(rest, "\n```\n")
	if !ok {
		t.Fatalf("%s: the tested nginx block does not end", doc)
	}
	return block + "\n"
}

// --- Keyward

// startNginxKeyward is startServer with a failure limit the test can reach.
func startNginxKeyward(t *testing.T, rec *recorder) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{dir: dir, db: "sqlite:" + filepath.Join(dir, "k.db"), log: &syncBuffer{}, rec: rec}
	s.m = &Main{
		Addr:               "127.0.0.1:0",
		DB:                 s.db,
		Logger:             slog.New(slog.NewJSONHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		PasswordParams:     &keyward.PasswordParams{Memory: 64, Time: 1, Threads: 1},
		UsageInterval:      50 * time.Millisecond,
		SweepInterval:      time.Hour,
		VerifyFailureLimit: nginxFailureLimit,
	}
	if err := s.m.Run(context.Background()); err != nil {
		t.Fatalf("Main.Run: %v", err)
	}
	s.c = newClient(s.m.URL, rec)
	t.Cleanup(func() { s.close(t) })
	return s
}

// directAuth asks Keyward's /v1/auth itself, without nginx.
func directAuth(t *testing.T, base, query string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/v1/auth"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// --- the upstream

// seen is what the upstream received for one request.
type seen struct {
	Method        string            `json:"method"`
	URI           string            `json:"uri"`
	Body          string            `json:"body"`
	Authorization string            `json:"authorization"`
	Keyward       map[string]string `json:"keyward"` // every X-Keyward-* header, canonical names
}

// echoApp answers every request with what it received, as JSON, and keeps it
// (HEAD responses carry no body).
type echoApp struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []seen
}

func newEchoApp(t *testing.T) *echoApp {
	a := &echoApp{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seen{Method: r.Method, URI: r.RequestURI, Body: string(body), Authorization: r.Header.Get("Authorization"),
			Keyward: map[string]string{}}
		for name, vs := range r.Header {
			if strings.HasPrefix(name, "X-Keyward-") {
				s.Keyward[name] = strings.Join(vs, "|")
			}
		}
		a.mu.Lock()
		a.seen = append(a.seen, s)
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo", "1")
		json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *echoApp) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

func (a *echoApp) last() seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[len(a.seen)-1]
}

// --- nginx

type nginxProc struct {
	dir, url string
	cmd      *exec.Cmd
	stderr   *syncBuffer
	exited   chan struct{}
	waitErr  error
}

// startNginx runs nginx in the foreground with everything under a fresh
// directory: the snippet with the test's addresses, inside a main
// configuration of the test's own.
func startNginx(t *testing.T, bin, snippet, keywardURL, appURL string) *nginxProc {
	t.Helper()
	// A port picked here may be taken before nginx binds it: try again.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		n, err := tryStartNginx(t, bin, snippet, keywardURL, appURL)
		if err == nil {
			return n
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatal(lastErr)
	return nil
}

func tryStartNginx(t *testing.T, bin, snippet, keywardURL, appURL string) (*nginxProc, error) {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	conf := snippet
	for _, sub := range [][2]string{
		{"server 127.0.0.1:8080;", "server " + strings.TrimPrefix(keywardURL, "http://") + ";"},
		{"server 127.0.0.1:9000;", "server " + strings.TrimPrefix(appURL, "http://") + ";"},
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port)},
	} {
		if n := strings.Count(conf, sub[0]); n != 1 {
			t.Fatalf("docs/gateways.md: the nginx block holds %q %d times, want once", sub[0], n)
		}
		conf = strings.Replace(conf, sub[0], sub[1], 1)
	}
	// Ready when /healthz (no key needed) answers through nginx, from the app.
	return runNginx(t, bin, dir, conf, port, func(resp *http.Response) error {
		if resp.StatusCode == 200 && resp.Header.Get("X-Echo") == "1" {
			return nil
		}
		return fmt.Errorf("GET /healthz: %s", resp.Status)
	})
}

// runNginx runs nginx in the foreground with conf (an http { } block's
// content) inside a main configuration of the test's own, all under dir,
// until GET /healthz through it satisfies ready.
func runNginx(t *testing.T, bin, dir, conf string, port int, ready func(*http.Response) error) (*nginxProc, error) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "keyward.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// Workers of a root master run as `user`; t.TempDir() is private, so
	// they run as root too (they would only need it for temporary files).
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	mainConf := fmt.Sprintf(`%[2]s
worker_processes 1;
pid %[1]s/nginx.pid;
lock_file %[1]s/nginx.lock;
error_log %[1]s/error.log info;
events {
    worker_connections 256;
}
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/tmp/client_body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    default_type application/octet-stream;
    include %[1]s/keyward.conf;
}
`, dir, user)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(mainConf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}

	n := &nginxProc{dir: dir, url: fmt.Sprintf("http://127.0.0.1:%d", port), stderr: &syncBuffer{}, exited: make(chan struct{})}
	n.cmd = exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"),
		"-g", "daemon off;")
	n.cmd.Stdout, n.cmd.Stderr = n.stderr, n.stderr
	// Its own process group, so that its workers can be killed with it.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %v", err)
	}
	go func() { n.waitErr = n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.stop(t)
		if t.Failed() {
			t.Logf("nginx configuration (%s):\n%s", dir, conf)
			t.Logf("nginx output:\n%s", n.stderr.String())
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error log:\n%s", b)
		}
	})

	deadline := time.Now().Add(15 * time.Second)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-n.exited:
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx exited (%v) before serving:\n%s%s", n.waitErr, n.stderr.String(), b)
		default:
		}
		resp, err := hc.Get(n.url + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err = ready(resp); err == nil {
				return n, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("nginx not ready after 15 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop asks nginx to quit fast (SIGTERM), then kills its process group.
func (n *nginxProc) stop(t *testing.T) {
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("nginx (pid %d) did not stop in 10 s; killing it", n.cmd.Process.Pid)
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.exited
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// --- requests through nginx

type gatewayClient struct {
	base string
	app  *echoApp
	hc   http.Client
}

type gatewayResponse struct {
	method, path    string
	status          int
	header          http.Header
	body            []byte
	upstreamReached bool
	seen            seen
}

func (r *gatewayResponse) String() string {
	return fmt.Sprintf("%s %s via nginx → %d", r.method, r.path, r.status)
}

// send makes one request through nginx and notes whether the upstream saw it.
func (g *gatewayClient) send(t *testing.T, method, path string, h http.Header, body []byte) *gatewayResponse {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = slices.Clone(v)
	}
	before := g.app.count()
	resp, err := g.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s via nginx: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("%s %s via nginx: read body: %v", method, path, err)
	}
	r := &gatewayResponse{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: b}
	switch after := g.app.count(); {
	case after == before+1:
		r.upstreamReached, r.seen = true, g.app.last()
	case after != before:
		t.Fatalf("%s %s via nginx: the upstream got %d requests", method, path, after-before)
	}
	return r
}

// passed requires a request to reach the upstream and come back 200.
func (g *gatewayClient) passed(t *testing.T, method, path string, h http.Header, body []byte) seen {
	t.Helper()
	r := g.send(t, method, path, h, body)
	if r.status != 200 || !r.upstreamReached || r.header.Get("X-Echo") != "1" {
		t.Fatalf("%s, upstream reached %v, X-Keyward-Code %q; want 200 from the upstream\nbody: %s",
			r, r.upstreamReached, r.header.Get("X-Keyward-Code"), r.body)
	}
	if c := r.header.Get("X-Keyward-Code"); c != "" {
		t.Errorf("%s: X-Keyward-Code %q on success", r, c)
	}
	return r.seen
}

// refused requires nginx to answer status without the upstream, with
// X-Keyward-Code code (when code is not empty).
func (g *gatewayClient) refused(t *testing.T, status int, method, path string, h http.Header, code string) *gatewayResponse {
	t.Helper()
	r := g.send(t, method, path, h, nil)
	if r.status != status || r.upstreamReached {
		t.Fatalf("%s, upstream reached %v, X-Keyward-Code %q; want %d without reaching the upstream\nbody: %s",
			r, r.upstreamReached, r.header.Get("X-Keyward-Code"), status, r.body)
	}
	if code != "" && r.header.Get("X-Keyward-Code") != code {
		t.Errorf("%s: X-Keyward-Code %q, want %s", r, r.header.Get("X-Keyward-Code"), code)
	}
	if status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("%s: WWW-Authenticate %q, want Bearer", r, r.header.Get("WWW-Authenticate"))
	}
	return r
}

// wantHeaders requires the upstream to have received exactly these
// X-Keyward-* headers.
func wantHeaders(t *testing.T, s seen, want map[string]string) {
	t.Helper()
	if len(s.Keyward) != len(want) {
		t.Errorf("%s %s: upstream got X-Keyward-* headers %v, want %v", s.Method, s.URI, s.Keyward, want)
		return
	}
	for k, v := range want {
		if s.Keyward[k] != v {
			t.Errorf("%s %s: upstream got X-Keyward-* headers %v, want %v", s.Method, s.URI, s.Keyward, want)
			return
		}
	}
}
