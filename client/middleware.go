package client

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"hash/crc32"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MiddlewareOptions tune a Verifier; zero values get the defaults.
type MiddlewareOptions struct {
	// RequireRole and RequireScopes are asked of every key this verifier
	// checks (the verification's require_role and require_scopes).
	RequireRole   string
	RequireScopes []string

	// CacheTTL is how long a VALID answer is reused without asking Keyward
	// (default 5 s, never past the key's expiry; negative: no cache). A
	// revocation takes up to this long to reach the service, and reused
	// answers count neither toward a key's rate limit nor its usage.
	CacheTTL time.Duration
	// FailureTTL is how long a refusal (NOT_FOUND, REVOKED, …) is reused
	// (default 1 s; negative: not cached). Errors and RATE_LIMITED are never
	// cached.
	FailureTTL time.Duration
	// CacheSize bounds the number of cached answers (default 10,000).
	CacheSize int
	// Timeout bounds one verification call to Keyward (default 10 s).
	Timeout time.Duration
	// DisableFormatCheck sends every presented key to Keyward. By default a
	// key that is not shaped like a Keyward secret, or whose checksum is
	// wrong, is refused without a call.
	DisableFormatCheck bool

	// ErrorHandler writes refusals; nil writes a problem+json document with
	// the refusal's status (401, 403, 429, or 503 when Keyward could not
	// answer) and WWW-Authenticate on 401.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err *Error)
	// Now is the clock (nil: time.Now); tests pass a fake one.
	Now func() time.Time
}

// Verifier checks API keys for a service through Keyward, with a short
// local cache so that repeated requests with the same key do not call
// Keyward. It is safe for concurrent use.
type Verifier struct {
	c    *Client
	opts MiddlewareOptions
	now  func() time.Time

	mu       sync.Mutex
	cache    map[[sha256.Size]byte]cacheEntry
	inflight map[[sha256.Size]byte]*flight
}

// cacheEntry is one answer: key on success, refusal otherwise.
type cacheEntry struct {
	key     *VerifiedKey
	refusal *Error
	until   time.Time
}

// flight is one verification call in progress that later requests with the
// same key wait for instead of calling too.
type flight struct {
	done    chan struct{}
	key     *VerifiedKey
	refusal *Error
}

// NewVerifier makes a Verifier that asks Keyward through c.
func (c *Client) NewVerifier(opts MiddlewareOptions) *Verifier {
	if opts.CacheTTL == 0 {
		opts.CacheTTL = 5 * time.Second
	}
	if opts.FailureTTL == 0 {
		opts.FailureTTL = time.Second
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 10000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Verifier{c: c, opts: opts, now: now, cache: map[[sha256.Size]byte]cacheEntry{},
		inflight: map[[sha256.Size]byte]*flight{}}
}

// Middleware verifies the API key of every request (from "Authorization:
// Bearer" or "X-API-Key", never the query string) before next sees it, and
// puts the verified key in the request's context (KeyFromContext). Failing
// requests get 401, 403 or 429 and never reach next.
//
//	mux.Handle("/invoices", c.Middleware(client.MiddlewareOptions{RequireScopes: []string{"invoices:read"}})(invoices))
func (c *Client) Middleware(opts MiddlewareOptions) func(http.Handler) http.Handler {
	return c.NewVerifier(opts).Handler
}

// Handler wraps next as Middleware describes.
func (v *Verifier) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, err := v.Verify(r.Context(), credential(r))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				e = unavailable()
			}
			if v.opts.ErrorHandler != nil {
				v.opts.ErrorHandler(w, r, e)
			} else {
				WriteProblem(w, e)
			}
			return
		}
		next.ServeHTTP(w, r.WithContext(ContextWithKey(r.Context(), k)))
	})
}

// Verify checks one presented key with this verifier's requirements,
// answering from the cache when it can. A refusal is an *Error: 401
// unauthenticated (VerifyCode tells why), 403 permission_denied (role or
// scopes short), 429 too_many_requests, or 503 unavailable when Keyward
// could not answer. The returned key is shared: do not modify it.
func (v *Verifier) Verify(ctx context.Context, secret string) (*VerifiedKey, error) {
	if secret == "" {
		return nil, refusal(VerifyNotFound, "an API key is required: Authorization: Bearer <key> or X-API-Key")
	}
	if !v.opts.DisableFormatCheck && !wellFormedSecret(secret) {
		return nil, refusal(VerifyNotFound, "")
	}
	h := sha256.Sum256([]byte(secret))
	now := v.now()

	v.mu.Lock()
	if e, ok := v.cache[h]; ok {
		if now.Before(e.until) {
			v.mu.Unlock()
			return e.result()
		}
		delete(v.cache, h)
	}
	if f, ok := v.inflight[h]; ok {
		v.mu.Unlock()
		select {
		case <-f.done:
			return entryResult(f.key, f.refusal)
		case <-ctx.Done():
			return nil, unavailable()
		}
	}
	f := &flight{done: make(chan struct{})}
	v.inflight[h] = f
	v.mu.Unlock()

	// The call outlives a leaving client, bounded by Timeout, because other
	// requests may be waiting for it.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.opts.Timeout)
	res, err := v.c.Verify(cctx, VerifyRequest{Key: secret, RequireRole: v.opts.RequireRole, RequireScopes: v.opts.RequireScopes})
	cancel()
	f.key, f.refusal = judge(res, err)

	v.mu.Lock()
	delete(v.inflight, h)
	if ttl := v.ttl(f, res); ttl > 0 {
		until := now.Add(ttl)
		if f.key != nil && f.key.ExpiresAt != nil && f.key.ExpiresAt.Before(until) {
			until = *f.key.ExpiresAt
		}
		v.store(h, cacheEntry{key: f.key, refusal: f.refusal, until: until}, now)
	}
	v.mu.Unlock()
	close(f.done)
	return entryResult(f.key, f.refusal)
}

// ttl is how long an answer may be reused: VALID for CacheTTL, a refusal
// about the key for FailureTTL, anything else (errors, rate limits) not at all.
func (v *Verifier) ttl(f *flight, res *VerifyResult) time.Duration {
	switch {
	case res == nil:
		return 0
	case f.key != nil:
		return v.opts.CacheTTL
	case res.Code == VerifyRateLimited:
		return 0
	}
	return v.opts.FailureTTL
}

// store adds an entry, making room first: expired entries go, else one
// arbitrary entry. v.mu is held.
func (v *Verifier) store(h [sha256.Size]byte, e cacheEntry, now time.Time) {
	if len(v.cache) >= v.opts.CacheSize {
		n := 0
		var victim [sha256.Size]byte
		for k, old := range v.cache {
			if !now.Before(old.until) {
				delete(v.cache, k)
				break
			}
			if n == 0 {
				victim = k
			}
			if n++; n >= 8 {
				break
			}
		}
		if len(v.cache) >= v.opts.CacheSize {
			delete(v.cache, victim)
		}
	}
	v.cache[h] = e
}

func (e cacheEntry) result() (*VerifiedKey, error) { return entryResult(e.key, e.refusal) }

func entryResult(k *VerifiedKey, refusal *Error) (*VerifiedKey, error) {
	if refusal != nil {
		cp := *refusal
		return nil, &cp
	}
	return k, nil
}

// judge turns Keyward's answer into a key or a refusal.
func judge(res *VerifyResult, err error) (*VerifiedKey, *Error) {
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusTooManyRequests {
			r := problem(http.StatusTooManyRequests, CodeTooManyRequests, "Too many requests",
				"too many failed verifications; retry later", VerifyRateLimited)
			r.RetryAfter = e.RetryAfter
			return nil, r
		}
		return nil, unavailable()
	}
	if res.Valid && res.Code == VerifyValid && res.Key != nil {
		return res.Key, nil
	}
	return nil, refusal(res.Code, "")
}

var refusalDetail = map[string]string{
	VerifyNotFound:     "the API key is not valid",
	VerifyInactive:     "the API key is inactive",
	VerifyRevoked:      "the API key was revoked",
	VerifyExpired:      "the API key has expired",
	VerifyKeysDisabled: "API keys are switched off for this key's tenant",
	VerifyForbidden:    "the API key lacks the role or scopes this endpoint requires",
	VerifyRateLimited:  "the API key is over its rate limit",
}

// refusal is the middleware's answer for a verification code.
func refusal(code, detail string) *Error {
	if detail == "" {
		detail = refusalDetail[code]
		if detail == "" {
			detail = "the API key is not valid"
		}
	}
	switch code {
	case VerifyForbidden:
		return problem(http.StatusForbidden, CodePermissionDenied, "Permission denied", detail, code)
	case VerifyRateLimited:
		return problem(http.StatusTooManyRequests, CodeTooManyRequests, "Too many requests", detail, code)
	}
	return problem(http.StatusUnauthorized, CodeUnauthenticated, "Unauthenticated", detail, code)
}

func unavailable() *Error {
	return problem(http.StatusServiceUnavailable, CodeUnavailable, "Service unavailable",
		"the API key could not be verified right now; retry later", "")
}

func problem(status int, code, title, detail, verifyCode string) *Error {
	return &Error{Status: status, Code: code, Type: "https://keyward.dev/problems/" + code, Title: title, Detail: detail,
		VerifyCode: verifyCode}
}

// WriteProblem writes e as an RFC 9457 problem document, the way Keyward
// does: WWW-Authenticate on 401, Retry-After on 429.
func WriteProblem(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="keyward"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	typ := e.Type
	if typ == "" && e.Code != "" {
		typ = "https://keyward.dev/problems/" + e.Code
	}
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Code   string `json:"code"`
	}{typ, e.Title, e.Status, e.Detail, e.Code})
}

// credential reads a key from the headers only, like Keyward itself: never
// from the query string or the body.
func credential(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			return strings.TrimSpace(a[7:])
		}
		return ""
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

type keyContextKey struct{}

// ContextWithKey returns ctx carrying k, as the middleware does; handlers'
// tests use it to stand in for the middleware.
func ContextWithKey(ctx context.Context, k *VerifiedKey) context.Context {
	return context.WithValue(ctx, keyContextKey{}, k)
}

// KeyFromContext is the key the middleware verified for this request. The
// key is shared between requests: do not modify it.
func KeyFromContext(ctx context.Context) (*VerifiedKey, bool) {
	k, ok := ctx.Value(keyContextKey{}).(*VerifiedKey)
	return k, ok && k != nil
}

// A Keyward secret is "<prefix>_<43 base62><6 base62 CRC32 of what comes
// before>", the prefix 2..12 of [a-z0-9].
const (
	secretBodyLen     = 43
	secretChecksumLen = 6
	base62Alphabet    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// wellFormedSecret checks a presented key's shape and checksum offline, so
// that look-alikes never cost a call.
func wellFormedSecret(s string) bool {
	us := strings.IndexByte(s, '_')
	if us < 2 || us > 12 || len(s)-us-1 != secretBodyLen+secretChecksumLen {
		return false
	}
	for i := 0; i < us; i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	for i := us + 1; i < len(s); i++ {
		if strings.IndexByte(base62Alphabet, s[i]) < 0 {
			return false
		}
	}
	crc := crc32.ChecksumIEEE([]byte(s[:us+1+secretBodyLen]))
	var want [secretChecksumLen]byte
	for i := len(want) - 1; i >= 0; i-- {
		want[i] = base62Alphabet[crc%62]
		crc /= 62
	}
	return string(want[:]) == s[us+1+secretBodyLen:]
}
