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

// Verify answers a verification request from the store. Malformed keys and
// bad checksums are refused before any lookup.
func (s *Service) Verify(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	if err := CheckVerifyInput(in); err != nil {
		return VerifyResult{}, err
	}
	if !ParseSecret(in.Key) {
		return VerifyResult{Code: CodeNotFound}, nil
	}
	hash := s.hasher.Hash(in.Key)
	now := s.Now()
	var res VerifyResult
	err := s.store.View(ctx, func(tx Tx) error {
		k, err := tx.KeyByHash(ctx, hash)
		if err != nil {
			return err
		}
		t, err := tx.TenantByID(ctx, k.TenantID)
		if err != nil {
			return err
		}
		if !Equal(k.Hash, hash) {
			return Errorf(ENotFound, "key not found")
		}
		res = VerifyResult{Code: Judge(k, t.Settings, in, now), Key: k}
		return nil
	})
	if IsCode(err, ENotFound) {
		return VerifyResult{Code: CodeNotFound}, nil
	}
	if err != nil {
		return VerifyResult{}, err
	}
	if res.Valid() {
		s.onUse(res.Key.ID, now)
	}
	return res, nil
}
