package keyward

import (
	"context"
	"time"
)

// Verification codes of the contract.
const (
	CodeValid        = "VALID"
	CodeNotFound     = "NOT_FOUND"
	CodeInactive     = "INACTIVE"
	CodeRevoked      = "REVOKED"
	CodeExpired      = "EXPIRED"
	CodeKeysDisabled = "KEYS_DISABLED"
	CodeForbidden    = "FORBIDDEN"
	CodeRateLimited  = "RATE_LIMITED"
)

// VerifyInput is a service's question: is this key good, with this role and these scopes?
type VerifyInput struct {
	Key           string
	RequireRole   string
	RequireScopes []string
}

// VerifyResult is the answer. Key is set whenever the code is about a found key.
type VerifyResult struct {
	Code string
	Key  *Key
}

// Valid reports whether the key may be used.
func (r VerifyResult) Valid() bool { return r.Code == CodeValid }

// CheckVerifyInput refuses requirements that cannot be met by any key.
func CheckVerifyInput(in VerifyInput) error {
	switch in.RequireRole {
	case "", KeyRoleAdmin, KeyRoleReadonly:
	default:
		return Errorf(EInvalid, "require_role must be admin or readonly")
	}
	if len(in.RequireScopes) > maxScopes {
		return Errorf(EInvalid, "at most %d required scopes", maxScopes)
	}
	return nil
}

// Judge decides a found key's verification code at now. The tenant switch
// wins over everything; then revocation, expiry and deactivation; then the
// role and scopes the caller required.
func Judge(k *Key, set Settings, in VerifyInput, now time.Time) string {
	if !set.APIKeysEnabled {
		return CodeKeysDisabled
	}
	switch k.Status(now) {
	case StatusRevoked:
		return CodeRevoked
	case StatusExpired:
		return CodeExpired
	case StatusInactive:
		return CodeInactive
	}
	if in.RequireRole == KeyRoleAdmin && k.Role != KeyRoleAdmin {
		return CodeForbidden
	}
	for _, want := range in.RequireScopes {
		found := false
		for _, have := range k.Scopes {
			if have == want {
				found = true
				break
			}
		}
		if !found {
			return CodeForbidden
		}
	}
	return CodeValid
}

// Resolver finds the key behind a secret's digest and its tenant's settings.
// The store answers by default; a cache (package verifier) may stand in front
// of it. What a Resolver returns is shared and must not be modified. now is
// the service's clock, read once per verification.
type Resolver interface {
	// Cached answers from memory alone, without allocating: ok is false when
	// only the store can tell; a nil key with ok true means "no such key".
	Cached(digest [32]byte, now time.Time) (k *Key, set *Settings, ok bool)
	// Resolve answers from memory or the store; an unknown digest is ENotFound.
	Resolve(ctx context.Context, digest [32]byte, now time.Time) (*Key, *Settings, error)
}

// storeResolver asks the store every time.
type storeResolver struct{ store Store }

func (storeResolver) Cached([32]byte, time.Time) (*Key, *Settings, bool) { return nil, nil, false }

func (r storeResolver) Resolve(ctx context.Context, d [32]byte, _ time.Time) (*Key, *Settings, error) {
	return r.store.KeyForVerify(ctx, d[:])
}

// resolve looks a presented secret up. A malformed secret or a bad checksum
// never reaches the store: memory is asked first, by digest, and only a
// secret that passes ParseSecret may go further. (A digest that memory knows
// is the digest of a secret that passed ParseSecret before, so a hit needs no
// parse; a secret longer than any Keyward secret is not even hashed.) The
// digest read back is compared in constant time. A nil key with a nil error
// means "no such key".
func (s *Service) resolve(ctx context.Context, secret string, now time.Time) (*Key, *Settings, error) {
	if len(secret) == 0 || len(secret) > MaxSecretLen {
		return nil, nil, nil
	}
	d := s.hasher.Digest(secret)
	k, set, ok := s.resolver.Cached(d, now)
	if !ok {
		if !ParseSecret(secret) {
			return nil, nil, nil
		}
		var err error
		if k, set, err = s.resolver.Resolve(ctx, d, now); err != nil {
			if e, ok := err.(*Error); ok && e.Code == ENotFound {
				return nil, nil, nil
			}
			return nil, nil, err
		}
	}
	if k == nil || !equalDigest(k.Hash, &d) {
		return nil, nil, nil
	}
	return k, set, nil
}

// Verify answers a service's verification request. On a cache hit it does
// no allocation and no database work.
func (s *Service) Verify(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	if err := CheckVerifyInput(in); err != nil {
		return VerifyResult{}, err
	}
	// One clock reading serves the whole verification; stores keep
	// microseconds, but nothing here is stored as it is.
	now := s.verifyNow()
	k, set, err := s.resolve(ctx, in.Key, now)
	if err != nil || k == nil {
		return VerifyResult{Code: CodeNotFound}, err
	}
	// The coarse clock may read a little behind (clock.go). Where that
	// could decide the answer, near the key's expiry (a rotation with no
	// grace expires the old key at the very moment of its answer), the
	// exact clock decides.
	if e := k.ExpiresAt; e != nil {
		if d := e.Sub(now); d > -exactNearExpiry && d < exactNearExpiry {
			now = s.now()
		}
	}
	res := VerifyResult{Code: Judge(k, *set, in, now), Key: k}
	if res.Code == CodeValid && k.RateLimit != nil && !s.limiter.Allow(k.ID, k.RateLimit.Limit, k.RateLimit.Window(), now) {
		res.Code = CodeRateLimited
	}
	s.onVerify(k, res.Code, now)
	return res, nil
}
