package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/api"
	"github.com/keyward/keyward/api/openapitest"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/usage"
	"github.com/keyward/keyward/verifier"
)

// The client's tests run against a real Keyward: the sqlite store in a
// temporary folder, the verifier cache, the usage recorder and the api
// server, wired as cmd/keyward does, served over 127.0.0.1.

const testPassword = "correct horse battery staple"

var (
	validatorOnce sync.Once
	validator     *openapitest.Validator
)

// mustValidator loads api.OpenAPIDocument once for the package.
func mustValidator(tb testing.TB) *openapitest.Validator {
	tb.Helper()
	validatorOnce.Do(func() { validator = openapitest.New(tb, api.OpenAPIDocument) })
	if validator == nil {
		tb.Fatal("the OpenAPI validator could not be built")
	}
	return validator
}

// logSink keeps the server's log for a failing test, and for the secret scan.
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

// serverOpts tune a test server; zero values are fine.
type serverOpts struct {
	verifyFailureLimit int              // default: high enough never to throttle
	now                func() time.Time // the service's clock; nil: the real one
}

// testServer is one real Keyward with a bootstrapped tenant.
type testServer struct {
	URL   string
	svc   *keyward.Service
	rec   *usage.Recorder
	logs  *logSink
	calls atomic.Int64 // requests that reached the server

	TenantID   string
	AdminID    string
	AdminEmail string
	AdminKeyID string
	AdminKey   string // the admin's admin key secret
}

func startServer(tb testing.TB, o serverOpts) *testServer {
	tb.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "keyward.db"))
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	hasher, err := keyward.NewHasher(bytes.Repeat([]byte("pepper!"), 8))
	if err != nil {
		tb.Fatal(err)
	}
	s := &testServer{logs: &logSink{}}
	logger := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := o.now
	if now == nil {
		now = time.Now
	}
	s.rec = usage.New(store, logger, 20*time.Millisecond, usage.WithClock(now))
	cache := verifier.New(store, verifier.Options{})
	s.svc = keyward.NewService(store, hasher, keyward.Options{
		Now: now, PasswordParams: &keyward.PasswordParams{Memory: 64, Time: 1, Threads: 1},
		OnUse: s.rec.Used, OnVerify: s.rec.Count, Resolver: cache, OnChange: cache.Invalidate,
	})
	limit := o.verifyFailureLimit
	if limit == 0 {
		limit = 100000
	}
	srv := api.New(s.svc, api.Options{Logger: logger, VerifyFailureLimit: limit})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		srv.ServeHTTP(w, r)
	}))
	s.URL = ts.URL
	tb.Cleanup(func() {
		ts.Close()
		s.rec.Close(context.Background())
		store.Close()
		if tb.Failed() {
			tb.Logf("server log:\n%s", s.logs.String())
		}
	})

	pw := testPassword
	b, err := s.svc.Bootstrap(ctx, keyward.BootstrapInput{Tenant: "acme", Email: "ada@acme.example", Name: "Ada", Password: &pw})
	if err != nil {
		tb.Fatalf("bootstrap: %v", err)
	}
	s.TenantID, s.AdminID, s.AdminEmail, s.AdminKeyID, s.AdminKey = b.TenantID, b.UserID, "ada@acme.example", b.KeyID, b.Secret
	return s
}

// countingTransport counts the requests that go through it.
type countingTransport struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(r)
}

// httpClient checks every answer against the OpenAPI document.
func httpClient(tb testing.TB, base http.RoundTripper) *http.Client {
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{Transport: mustValidator(tb).Transport(tb, base), Timeout: 30 * time.Second}
}

// admin is a client with the bootstrap admin key.
func (s *testServer) admin(tb testing.TB) *Client {
	return New(s.URL+"/", WithAPIKey(s.AdminKey), WithHTTPClient(httpClient(tb, nil)), WithUserAgent("client-test"))
}

// anon is a client without a credential.
func (s *testServer) anon(tb testing.TB) *Client {
	return New(s.URL, WithHTTPClient(httpClient(tb, nil)))
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// wantCode fails unless err is an *Error with this status and code and a detail.
func wantCode(tb testing.TB, err error, status int, code string) *Error {
	tb.Helper()
	var e *Error
	if !errors.As(err, &e) {
		tb.Fatalf("want %d %s, got %v", status, code, err)
	}
	if e.Status != status || e.Code != code || e.Detail == "" || e.Title == "" || !strings.HasSuffix(e.Type, code) {
		tb.Fatalf("want %d %s with type, title and detail, got %+v", status, code, e)
	}
	if !IsCode(err, code) {
		tb.Fatalf("IsCode(%v, %q) = false", err, code)
	}
	return e
}

func drain(r io.Reader) { io.Copy(io.Discard, r) }
