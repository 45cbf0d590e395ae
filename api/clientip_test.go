package api_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/api"
)

// newTrustedEnv is newEnv with a server that trusts the given proxies.
func newTrustedEnv(tb testing.TB, limit int, network bool, trusted ...string) *env {
	tb.Helper()
	e := newEnv(tb, envOptions{verifyFailureLimit: limit})
	var prefixes []netip.Prefix
	for _, t := range trusted {
		prefixes = append(prefixes, netip.MustParsePrefix(t))
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.srv = api.New(e.svc, api.Options{Logger: logger, Metrics: api.NewMetrics(), VerifyFailureLimit: limit, TrustedProxies: prefixes})
	if network {
		e.ts = httptest.NewServer(e.srv)
		tb.Cleanup(e.ts.Close)
	}
	return e
}

// eventIP creates a key from remoteAddr with the X-Forwarded-For lines xff
// and returns the "ip" of the key.created event it caused.
func eventIP(t *testing.T, e *env, admin, remoteAddr string, xff []string) string {
	t.Helper()
	q := req{method: "POST", path: "/v1/keys", bearer: admin, body: map[string]string{"name": "k"}, remoteAddr: remoteAddr}
	if xff != nil {
		q.header = http.Header{"X-Forwarded-For": xff}
	}
	r := e.send(t, q)
	if r.Status != http.StatusCreated {
		t.Fatalf("create key: %s", r)
	}
	var k struct{ ID string }
	r.decode(t, &k)
	r = e.send(t, req{method: "GET", path: "/v1/events?key_id=" + k.ID, bearer: admin})
	var out struct {
		Events []struct{ Action, IP string }
	}
	r.decode(t, &out)
	if r.Status != http.StatusOK || len(out.Events) != 1 || out.Events[0].Action != keyward.ActionKeyCreated {
		t.Fatalf("events of the new key: %s", r)
	}
	return out.Events[0].IP
}

// TestClientIP: the address events record, with and without trusted proxies,
// for every shape of X-Forwarded-For.
func TestClientIP(t *testing.T) {
	// ::ffff:172.16.0.0/108 is 172.16.0.0/12, written IPv4-mapped.
	e := newTrustedEnv(t, 0, false, "127.0.0.1/32", "10.0.0.0/8", "2001:db8:ffff::/48", "::ffff:172.16.0.0/108")
	boot := e.mustBootstrap(t, "acme", "ada@acme.test")
	e.mustSettings(t, e.principal(t, boot.Secret), keyward.SettingsPatch{MaxKeysPerUser: ptr(1000)})

	const proxy, stranger = "127.0.0.1:40000", "203.0.113.7:5555"
	cases := []struct {
		name string
		peer string
		xff  []string
		want string
	}{
		{"untrusted peer, no header", stranger, nil, "203.0.113.7"},
		{"untrusted peer, spoofed header", stranger, []string{"198.51.100.1"}, "203.0.113.7"},
		{"untrusted peer claiming a trusted chain", stranger, []string{"198.51.100.1, 10.0.0.1, 127.0.0.1"}, "203.0.113.7"},
		{"trusted peer, no header", proxy, nil, "127.0.0.1"},
		{"trusted peer, empty header", proxy, []string{""}, "127.0.0.1"},
		{"trusted peer, client", proxy, []string{"198.51.100.1"}, "198.51.100.1"},
		{"client's own spoofed entries are ignored", proxy, []string{"6.6.6.6, 10.0.0.1, 198.51.100.1"}, "198.51.100.1"},
		{"several trusted hops", proxy, []string{"198.51.100.1, 10.1.2.3, 10.0.0.9"}, "198.51.100.1"},
		{"spoof beyond several hops", proxy, []string{"6.6.6.6,198.51.100.1,10.1.2.3,172.16.5.5"}, "198.51.100.1"},
		{"every entry trusted: the leftmost", proxy, []string{"10.0.0.5, 10.0.0.6"}, "10.0.0.5"},
		{"garbage only: the peer", proxy, []string{"nonsense"}, "127.0.0.1"},
		{"garbage after a trusted hop: that hop", proxy, []string{"198.51.100.1, unknown, 10.0.0.6"}, "10.0.0.6"},
		{"garbage left of the client", proxy, []string{"<script>, 198.51.100.1"}, "198.51.100.1"},
		{"a CIDR is not an address", proxy, []string{"198.51.100.0/24"}, "127.0.0.1"},
		{"empty entries", proxy, []string{" , 198.51.100.1 ,, "}, "198.51.100.1"},
		{"entries with ports", proxy, []string{"6.6.6.6, 198.51.100.1:4711, 10.0.0.1:80"}, "198.51.100.1"},
		{"IPv6 client, canonical form", proxy, []string{"2001:DB8:0:0::1"}, "2001:db8::1"},
		{"IPv6 client in brackets with a port", proxy, []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"IPv6 client in brackets", proxy, []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"IPv6 trusted peer and hop", "[2001:db8:ffff::5]:443", []string{"198.51.100.1, 2001:db8:ffff::6"}, "198.51.100.1"},
		{"IPv6 untrusted peer", "[2001:db8::7]:443", []string{"198.51.100.1"}, "2001:db8::7"},
		{"IPv4-mapped trusted peer", "[::ffff:127.0.0.1]:40000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped untrusted peer", "[::ffff:203.0.113.7]:1", []string{"198.51.100.1"}, "203.0.113.7"},
		{"IPv4-mapped client", proxy, []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"IPv4-mapped trusted hop", proxy, []string{"198.51.100.1, ::ffff:10.0.0.1"}, "198.51.100.1"},
		{"several header lines", proxy, []string{"6.6.6.6, 198.51.100.1", "10.0.0.1"}, "198.51.100.1"},
		{"several header lines, client in the last", proxy, []string{"198.51.100.9", "198.51.100.1, 10.0.0.1"}, "198.51.100.1"},
		{"several header lines, all trusted", proxy, []string{"10.0.0.3", "10.0.0.1, 10.0.0.2"}, "10.0.0.3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := eventIP(t, e, boot.Secret, c.peer, c.xff); got != c.want {
				t.Errorf("peer %s, X-Forwarded-For %q: event ip %q, want %q", c.peer, c.xff, got, c.want)
			}
		})
	}

	// Without trusted proxies the header is never believed, not even from loopback.
	plain := newTrustedEnv(t, 0, false)
	pb := plain.mustBootstrap(t, "acme", "ada@acme.test")
	for _, peer := range []string{proxy, stranger} {
		want := netip.MustParseAddrPort(peer)
		if got := eventIP(t, plain, pb.Secret, peer, []string{"198.51.100.1"}); got != want.Addr().String() {
			t.Errorf("no trusted proxies, peer %s: event ip %q, want the peer", peer, got)
		}
	}
}

// TestTrustedProxyFailureLimit: behind a trusted proxy (a real connection
// from 127.0.0.1), the failed-verification limit counts each forwarded client
// on its own, a direct client cannot borrow another's address, and events
// record the forwarded client.
func TestTrustedProxyFailureLimit(t *testing.T) {
	const limit = 3
	e := newTrustedEnv(t, limit, true, "127.0.0.1/32", "::1/128")
	boot := e.mustBootstrap(t, "acme", "ada@acme.test")
	const a, b = "198.51.100.1", "198.51.100.2"
	verify := func(xff, remoteAddr string) reply {
		t.Helper()
		return e.send(t, req{method: "POST", path: "/v1/keys/verify", body: map[string]string{"key": unknownSecret(t)},
			header: http.Header{"X-Forwarded-For": {xff}}, remoteAddr: remoteAddr})
	}
	for i := 0; i < limit; i++ {
		if r := verify(a, ""); r.Status != http.StatusOK {
			t.Fatalf("failure %d from %s: %s", i+1, a, r)
		}
	}
	checkProblem(t, verify(a, ""), http.StatusTooManyRequests, keyward.ETooManyRequests)
	checkProblem(t, verify("6.6.6.6, "+a, ""), http.StatusTooManyRequests, keyward.ETooManyRequests)
	// Another client behind the same proxy has its own count.
	for i := 0; i < limit; i++ {
		if r := verify(b, ""); r.Status != http.StatusOK {
			t.Fatalf("failure %d from %s while %s is throttled: %s", i+1, b, a, r)
		}
	}
	checkProblem(t, verify(b, ""), http.StatusTooManyRequests, keyward.ETooManyRequests)
	// A client connecting directly is itself, whatever it claims.
	if r := verify("198.51.100.3", "203.0.113.9:1234"); r.Status != http.StatusOK {
		t.Errorf("a direct client claiming a fresh address: %s", r)
	}
	// The proxy itself is not throttled by its clients' failures.
	if r := e.send(t, req{method: "POST", path: "/v1/keys/verify", body: map[string]string{"key": unknownSecret(t)}}); r.Status != http.StatusOK {
		t.Errorf("a failure with no forwarded client: %s", r)
	}

	// Events: a failed and a successful login through the proxy.
	if r := e.send(t, req{method: "POST", path: "/v1/sessions", body: map[string]string{"email": "ada@acme.test", "password": "wrong password!"},
		header: http.Header{"X-Forwarded-For": {a}}}); r.Status != http.StatusUnauthorized {
		t.Fatalf("login with a wrong password: %s", r)
	}
	if r := e.send(t, req{method: "POST", path: "/v1/sessions", body: map[string]string{"email": "ada@acme.test", "password": testPassword},
		header: http.Header{"X-Forwarded-For": {"6.6.6.6, " + b}}}); r.Status != http.StatusCreated {
		t.Fatalf("login: %s", r)
	}
	for action, want := range map[string]string{keyward.ActionAuthFailed: a, keyward.ActionSessionCreated: b} {
		r := e.send(t, req{method: "GET", path: "/v1/events?action=" + action, bearer: boot.Secret})
		var out struct{ Events []struct{ IP string } }
		r.decode(t, &out)
		if r.Status != http.StatusOK || len(out.Events) != 1 || out.Events[0].IP != want {
			t.Errorf("%s events: %s, want one with ip %s", action, r, want)
		}
	}
}
