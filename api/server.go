// Package api serves Keyward's JSON API (/v1), forward authentication for
// gateways, and the operational endpoints. It only translates: every rule is
// in package keyward, and errors become problem documents in one place.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// Options tune the server; zero values get the defaults.
type Options struct {
	Logger *slog.Logger
	// VerifyFailureLimit is how many failed verifications one client address
	// may make per VerifyFailureWindow before it gets 429 (default 100 a minute).
	VerifyFailureLimit  int
	VerifyFailureWindow time.Duration
	// Metrics, when set, is served at /metrics and counts requests.
	Metrics *Metrics
	// TrustedProxies are the addresses of the proxies in front of the server
	// (load balancers) whose X-Forwarded-For is believed, for events and the
	// failed-verification limit: see clientIP. Empty (the default) trusts
	// nobody: the client is the connection's peer and the header is not read.
	TrustedProxies []netip.Prefix
}

// Server is the HTTP face of a keyward.Service.
type Server struct {
	svc     *keyward.Service
	log     *slog.Logger
	limiter *failureLimiter
	metrics *Metrics
	mux     *http.ServeMux
	routes  []Route
	trusted []netip.Prefix // Options.TrustedProxies, masked and unmapped
}

// Route is one entry of the route table; the authorization matrix test walks it.
type Route struct {
	Method  string
	Pattern string
	// Public routes need no principal.
	Public  bool
	handler http.HandlerFunc
	// forwarded routes answer a gateway about a request it passes on: they
	// never read the body, which may be the client's upload (Envoy and
	// Traefik can forward it), so its size is not theirs to judge.
	forwarded bool
}

// authedHandler serves a route that needs a principal.
type authedHandler func(w http.ResponseWriter, r *http.Request, p *keyward.Principal) error

// New builds the server and its route table.
func New(svc *keyward.Service, opts Options) *Server {
	s := &Server{svc: svc, log: opts.Logger, metrics: opts.Metrics, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.Default()
	}
	limit, window := opts.VerifyFailureLimit, opts.VerifyFailureWindow
	if limit <= 0 {
		limit = 100
	}
	if window <= 0 {
		window = time.Minute
	}
	s.limiter = newFailureLimiter(limit, window)
	for _, p := range opts.TrustedProxies {
		if !p.IsValid() {
			continue
		}
		// Client addresses are compared unmapped: ::ffff:10.0.0.0/104 is 10.0.0.0/8.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		s.trusted = append(s.trusted, p.Masked())
	}

	open := func(method, pattern string, h func(http.ResponseWriter, *http.Request) error) {
		s.add(Route{Method: method, Pattern: pattern, Public: true, handler: func(w http.ResponseWriter, r *http.Request) {
			if err := h(w, r); err != nil {
				s.fail(w, r, err)
			}
		}})
	}
	authed := func(method, pattern string, h authedHandler) {
		s.add(Route{Method: method, Pattern: pattern, handler: s.authenticated(h)})
	}

	open("POST", "/v1/sessions", s.login)
	authed("DELETE", "/v1/sessions/current", s.logout)
	authed("GET", "/v1/me", s.me)

	authed("GET", "/v1/users", s.listUsers)
	authed("POST", "/v1/users", s.createUser)
	authed("GET", "/v1/users/{id}", s.getUser)
	authed("PATCH", "/v1/users/{id}", s.updateUser)
	authed("DELETE", "/v1/users/{id}", s.deleteUser)

	authed("GET", "/v1/keys", s.listKeys)
	authed("POST", "/v1/keys", s.createKey)
	open("POST", "/v1/keys/verify", s.verify)
	authed("POST", "/v1/keys/revoke", s.bulkRevoke)
	authed("GET", "/v1/keys/{id}", s.getKey)
	authed("PATCH", "/v1/keys/{id}", s.updateKey)
	authed("DELETE", "/v1/keys/{id}", s.deleteKey)
	authed("POST", "/v1/keys/{id}/deactivate", s.deactivateKey)
	authed("POST", "/v1/keys/{id}/reactivate", s.reactivateKey)
	authed("POST", "/v1/keys/{id}/revoke", s.revokeKey)
	authed("POST", "/v1/keys/{id}/rotate", s.rotateKey)
	authed("GET", "/v1/keys/{id}/usage", s.keyUsage)

	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"} {
		s.add(Route{Method: m, Pattern: "/v1/auth", Public: true, handler: s.forwardAuth, forwarded: true})
	}

	authed("GET", "/v1/settings", s.getSettings)
	authed("PATCH", "/v1/settings", s.updateSettings)
	authed("GET", "/v1/events", s.listEvents)

	open("GET", "/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Write(OpenAPIDocument)
		return nil
	})
	open("GET", "/healthz", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	})
	open("GET", "/readyz", s.ready)
	if s.metrics != nil {
		s.add(Route{Method: "GET", Pattern: "/metrics", Public: true, handler: s.metrics.handler().ServeHTTP})
	}

	// Anything else under /v1 is a problem document, not Go's plain-text 404.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, keyward.Errorf(keyward.ENotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s
}

func (s *Server) add(rt Route) {
	s.routes = append(s.routes, rt)
	h := rt.handler
	if !rt.forwarded {
		h = s.bounded(h)
	}
	if s.metrics != nil {
		h = s.metrics.instrument(rt.Method+" "+rt.Pattern, h)
	}
	s.mux.HandleFunc(rt.Method+" "+rt.Pattern, h)
}

// bounded refuses a request body over MaxBodyBytes with 413 before h runs
// (see limitBody), whether or not h reads the body.
func (s *Server) bounded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := limitBody(w, r); err != nil {
			s.fail(w, r, err)
			return
		}
		h(w, r)
	}
}

// Routes lists the route table, for tests that must cover every route.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// ServeHTTP adds a request ID, the request's metadata for events, recovery
// from panics, and a request log line that never holds a credential.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 64 {
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set("X-Request-Id", id)
	ip := s.clientIP(r)
	ctx := context.WithValue(r.Context(), requestIDKey{}, requestMeta{id: id, ip: ip})
	ctx = keyward.WithRequestInfo(ctx, keyward.RequestInfo{IP: ip, UserAgent: r.UserAgent()})
	r = r.WithContext(ctx)
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(ctx, "panic", "panic", v, "request_id", id, "path", r.URL.Path)
			if !sw.wrote {
				writeProblem(sw, problemFor(r, s.log, keyward.Errorf(keyward.EInternal, "panic")))
			}
		}
		// Verifications that are answered, the hot path, are logged at debug
		// level (their counts are on /metrics); a refusal of forward auth, a
		// throttled address (429), any error, and every other request at
		// info, so that floods of bad keys stay visible.
		level := slog.LevelInfo
		if (r.URL.Path == "/v1/keys/verify" || r.URL.Path == "/v1/auth") && sw.status == http.StatusOK {
			level = slog.LevelDebug
		}
		s.log.LogAttrs(ctx, level, "request", slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", sw.status), slog.Duration("took", time.Since(start)),
			slog.String("ip", ip))
	}()
	sw.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(sw, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type requestIDKey struct{}

// requestMeta is what ServeHTTP works out once per request.
type requestMeta struct{ id, ip string }

func requestID(ctx context.Context) string {
	m, _ := ctx.Value(requestIDKey{}).(requestMeta)
	return m.id
}

// clientIP is the client address of a request served by ServeHTTP, which
// works it out once (Server.clientIP).
func clientIP(r *http.Request) string {
	if m, ok := r.Context().Value(requestIDKey{}).(requestMeta); ok {
		return m.ip
	}
	return peerHost(r.RemoteAddr)
}

// peerHost is the host of the connection's peer address.
func peerHost(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// clientIP works out the client's address. Without trusted proxies it is the
// connection's peer, and no header is read. When the peer is a trusted proxy,
// X-Forwarded-For (every line of it, each a comma-separated list) is walked
// from the right, the end the proxies append to: trusted entries are proxies
// and are skipped, and the first untrusted entry is the client. It and the
// entries right of it were written by proxies we trust; whatever is further
// left came from the client itself and is never looked at. When every entry is
// trusted the leftmost one is the client, and without entries the peer is.
// An entry that is not an address ("unknown", garbage) stops the walk: the
// client is the last trusted hop seen (the entry just right of it, or the
// peer), never the garbage nor anything left of it. Entries may carry a port
// ("192.0.2.1:4711", "[2001:db8::1]:443"); empty entries are skipped.
// With trusted proxies, addresses are normalised: IPv4-mapped IPv6 is
// written as IPv4, zones are dropped, IPv6 is in its canonical form.
func (s *Server) clientIP(r *http.Request) string {
	host := peerHost(r.RemoteAddr)
	if len(s.trusted) == 0 {
		return host
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host // not an IP address (a Unix socket): nothing to trust
	}
	peer = peer.WithZone("").Unmap()
	if !s.isTrusted(peer) {
		return addrText(peer, host)
	}
	last, lastRaw := peer, host
	lines := r.Header["X-Forwarded-For"]
	for i := len(lines) - 1; i >= 0; i-- {
		for rest := lines[i]; rest != ""; {
			entry := rest
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				entry, rest = rest[j+1:], rest[:j]
			} else {
				rest = ""
			}
			if entry = strings.TrimSpace(entry); entry == "" {
				continue
			}
			a, ok := parseForwardedAddr(entry)
			if !ok {
				return addrText(last, lastRaw)
			}
			if !s.isTrusted(a) {
				return addrText(a, entry)
			}
			last, lastRaw = a, entry
		}
	}
	return addrText(last, lastRaw)
}

func (s *Server) isTrusted(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseForwardedAddr reads one X-Forwarded-For entry: an address, with or
// without a port, IPv6 with or without brackets; unmapped and without zone.
func parseForwardedAddr(entry string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(entry)
	if err != nil {
		if n := len(entry); n > 2 && entry[0] == '[' && entry[n-1] == ']' {
			a, err = netip.ParseAddr(entry[1 : n-1])
		} else {
			var ap netip.AddrPort
			if ap, err = netip.ParseAddrPort(entry); err == nil {
				a = ap.Addr()
			}
		}
		if err != nil {
			return netip.Addr{}, false
		}
	}
	return a.WithZone("").Unmap(), true
}

// addrText is a's canonical text: raw itself when raw already is it, so that
// the common case does not allocate.
func addrText(a netip.Addr, raw string) string {
	var buf [64]byte
	b := a.AppendTo(buf[:0])
	if string(b) == raw {
		return raw
	}
	return string(b)
}

// credential reads a key or session token from the headers only: never from
// the query string or the body. A Bearer credential wins; otherwise
// X-API-Key, so that a request whose Authorization header belongs to another
// scheme (Basic auth for the upstream, behind a gateway) still carries its key.
func credential(r *http.Request) string {
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		if c := strings.TrimSpace(a[7:]); c != "" {
			return c
		}
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

// authenticated resolves the principal (fresh at every request) and refuses
// requests without one.
func (s *Server) authenticated(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.svc.Authenticate(r.Context(), credential(r))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if p.Key != nil && p.Key.Role != keyward.KeyRoleAdmin && r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.fail(w, r, keyward.Errorf(keyward.EPermissionDenied, "a readonly key may only make GET requests"))
			return
		}
		if err := h(w, r, p); err != nil {
			s.fail(w, r, err)
		}
	}
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.svc.Store().Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "database unreachable"})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}
