package keyward

import (
	"context"
	"crypto/rand"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/ratelimit"
)

// Options are the Service's injectable parts; zero values get production defaults.
type Options struct {
	Now            func() time.Time // the clock; tests pass a fixed or stepping one
	Rand           io.Reader        // randomness for secrets and IDs
	PasswordParams *PasswordParams  // argon2id costs
	SessionTTL     time.Duration    // lifetime of a login session (default 12h)
	// OnUse is told of every successful use of a key by API authentication,
	// and of every successful verification when OnVerify is nil (OnVerify,
	// when set, notes those itself); the usage recorder batches these into
	// last_used_at.
	OnUse func(keyID string, at time.Time)
	// OnChange is told, after commit, of every key whose verification answer
	// may have changed and of every tenant whose settings changed, so that
	// caches can drop them.
	OnChange func(Change)
	// Resolver finds keys by digest for verification and authentication;
	// nil asks the store every time.
	Resolver Resolver
	// OnVerify is told of every verification of a found key with its
	// outcome, for usage counts and spike detection. A VALID outcome is also
	// a use of the key, which OnVerify notes as OnUse would (one call on the
	// hot path, not two); without OnVerify, valid verifications go to OnUse.
	OnVerify func(k *Key, code string, at time.Time)
	// RateLimiter enforces keys' rate limits; nil limits on this node only.
	RateLimiter RateLimiter
}

// RateLimiter counts one use of a key and reports whether it is within the
// key's limit. ratelimit.Local satisfies it.
type RateLimiter interface {
	Allow(keyID string, limit int, window time.Duration, now time.Time) bool
}

// Change names what a committed write may have made stale in a cache.
type Change struct {
	TenantID  string   // set when the tenant's settings changed
	KeyHashes [][]byte // keys changed, deleted or revoked
}

// Service carries out every operation of the contract: the rules live here,
// the transports only translate. Every method that changes something writes
// its audit events in the same transaction.
type Service struct {
	store      Store
	hasher     *Hasher
	now        func() time.Time
	rand       io.Reader
	pw         PasswordParams
	sessionTTL time.Duration
	onUse      func(string, time.Time)
	onChange   func(Change)
	resolver   Resolver
	onVerify   func(*Key, string, time.Time)
	verifyNow  func() time.Time // s.now, or the cheaper wallClock when that is time.Now
	limiter    RateLimiter
	dummyHash  string // checked when no user matches, so both answers take as long
}

// NewService wires the domain to a store and the server's pepper.
func NewService(store Store, hasher *Hasher, opts Options) *Service {
	s := &Service{store: store, hasher: hasher, now: opts.Now, rand: opts.Rand,
		sessionTTL: opts.SessionTTL, onUse: opts.OnUse, onChange: opts.OnChange}
	s.verifyNow = s.now
	if s.now == nil {
		s.now, s.verifyNow = time.Now, wallClock.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	s.pw = DefaultPasswordParams
	if opts.PasswordParams != nil {
		s.pw = *opts.PasswordParams
	}
	if s.sessionTTL <= 0 {
		s.sessionTTL = 12 * time.Hour
	}
	if s.onUse == nil {
		s.onUse = func(string, time.Time) {}
	}
	s.onVerify, s.limiter = opts.OnVerify, opts.RateLimiter
	if s.onVerify == nil {
		onUse := s.onUse
		s.onVerify = func(k *Key, code string, at time.Time) {
			if code == CodeValid {
				onUse(k.ID, at)
			}
		}
	}
	if s.limiter == nil {
		s.limiter = ratelimit.NewLocal()
	}
	s.resolver = opts.Resolver
	if s.resolver == nil {
		s.resolver = storeResolver{store}
	}
	if s.onChange == nil {
		s.onChange = func(Change) {}
	}
	s.dummyHash, _ = HashPassword(s.rand, s.pw, "keyward-dummy-password")
	return s
}

// Now is the service clock, truncated to what stores keep (microseconds).
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Store exposes the store for read paths outside the domain (health checks).
func (s *Service) Store() Store { return s.store }

// Hasher exposes the hasher for verification layers.
func (s *Service) Hasher() *Hasher { return s.hasher }

func (s *Service) newID(prefix string) string {
	id, err := NewID(s.rand, prefix)
	if err != nil {
		panic("keyward: randomness failed: " + err.Error())
	}
	return id
}

// RequestInfo is what events record about the request behind a change.
type RequestInfo struct {
	IP        string
	UserAgent string
}

type requestInfoKey struct{}

// WithRequestInfo attaches the client's address and user agent for events.
func WithRequestInfo(ctx context.Context, ri RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, ri)
}

func requestInfo(ctx context.Context) RequestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(RequestInfo)
	return ri
}

// event builds an event with the request's metadata and a fresh ID.
func (s *Service) event(ctx context.Context, now time.Time, tenantID, action string, actor Actor, target Ref, targetOwner string, details map[string]any) *Event {
	ri := requestInfo(ctx)
	if details == nil {
		details = map[string]any{}
	}
	return &Event{
		ID: s.newID(PrefixEvent), Time: now, TenantID: tenantID, Action: action,
		Actor: actor.Ref, ActorUserID: actor.UserID, Target: target, TargetOwnerID: targetOwner,
		IP: ri.IP, UserAgent: truncate(ri.UserAgent, 512), Details: details,
	}
}

// Actor is who an event says acted, and the user behind it.
type Actor struct {
	Ref    Ref
	UserID string
}

// SystemActor is Keyward itself (bootstrap, expiry sweeps).
var SystemActor = Actor{Ref: Ref{Type: ActorSystem, ID: "system", Name: "keyward"}}

func keyRef(k *Key) Ref   { return Ref{Type: TargetKey, ID: k.ID, Name: k.Name} }
func userRef(u *User) Ref { return Ref{Type: TargetUser, ID: u.ID, Name: u.Name} }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// checkText validates a required or optional text field by length in characters.
func checkText(field, v string, min, max int) error {
	if !utf8.ValidString(v) {
		return Errorf(EInvalid, "%s must be valid UTF-8", field)
	}
	n := utf8.RuneCountInString(v)
	if n < min {
		if min == 1 {
			return Errorf(EInvalid, "%s is required", field)
		}
		return Errorf(EInvalid, "%s must be at least %d characters", field, min)
	}
	if n > max {
		return Errorf(EInvalid, "%s must be at most %d characters", field, max)
	}
	for _, r := range v {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return Errorf(EInvalid, "%s must not contain control characters", field)
		}
	}
	return nil
}

// checkPageSize applies the contract's paging bounds: default 50, 1..200.
func checkPageSize(n int) (int, error) {
	switch {
	case n == 0:
		return 50, nil
	case n < 0 || n > 200:
		return 0, Errorf(EInvalid, "page_size must be between 1 and 200")
	}
	return n, nil
}

func normalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }
