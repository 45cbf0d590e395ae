package client

import (
	"encoding/json"
	"time"
)

// Values of the contract's enumerations.
const (
	KindUser   = "user"   // a person
	KindSystem = "system" // a service user that owns system keys

	RoleTenantAdmin = "tenant_admin" // a user's role
	RoleDeveloper   = "developer"    // a user's role

	KeyRoleAdmin    = "admin"    // a key with its owner's full rights
	KeyRoleReadonly = "readonly" // a key that may only make GET requests

	TypeUser   = "user"   // a key owned by a person
	TypeSystem = "system" // a key owned by a system user

	StatusActive   = "active"
	StatusInactive = "inactive"
	StatusRevoked  = "revoked"
	StatusExpired  = "expired"
)

// Verification codes (VerifyResult.Code).
const (
	VerifyValid        = "VALID"
	VerifyNotFound     = "NOT_FOUND"
	VerifyInactive     = "INACTIVE"
	VerifyRevoked      = "REVOKED"
	VerifyExpired      = "EXPIRED"
	VerifyKeysDisabled = "KEYS_DISABLED"
	VerifyForbidden    = "FORBIDDEN"
	VerifyRateLimited  = "RATE_LIMITED"
)

// User is a person or a system user of a tenant.
type User struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`  // KindUser or KindSystem
	Roles     []string  `json:"roles"` // RoleTenantAdmin, RoleDeveloper
	Licensed  bool      `json:"licensed"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Key is an API key as the API shows it: never with its secret.
type Key struct {
	ID           string         `json:"id"`
	TenantID     string         `json:"tenant_id"`
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	OwnerID      string         `json:"owner_id"`
	OwnerName    string         `json:"owner_name"`
	OwnerEmail   string         `json:"owner_email"`
	Type         string         `json:"type"`   // TypeUser or TypeSystem: the owner's kind
	Role         string         `json:"role"`   // KeyRoleAdmin or KeyRoleReadonly
	Scopes       []string       `json:"scopes"` // never nil in answers
	Meta         map[string]any `json:"meta"`
	Status       string         `json:"status"` // StatusActive, …
	Start        string         `json:"start"`  // the secret's first characters, for display
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	ExpiresAt    *time.Time     `json:"expires_at"`   // nil: never expires
	LastUsedAt   *time.Time     `json:"last_used_at"` // nil: never used
	RevokedAt    *time.Time     `json:"revoked_at"`
	RevokedBy    *string        `json:"revoked_by"`
	RevokeReason *string        `json:"revoke_reason"`
	// RateLimit is the key's own limit on verifications; nil: none (or a
	// server that does not know per-key limits).
	RateLimit *RateLimit `json:"rate_limit"`
}

// RateLimit caps a key's successful verifications per window.
type RateLimit struct {
	Limit         int `json:"limit"`
	WindowSeconds int `json:"window_seconds"`
}

// CreatedKey is the answer to CreateKey and RotateKey: the key and its
// secret, which no other answer ever holds again.
type CreatedKey struct {
	Key
	Secret string `json:"secret"`
}

// Session is a person's login.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      User      `json:"user"`
}

// Tenant names the caller's tenant.
type Tenant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Identity is the answer to Me: who the credential acts as.
type Identity struct {
	User   User   `json:"user"`
	Tenant Tenant `json:"tenant"`
	Key    *Key   `json:"key"` // the API key in use; nil for a session
}

// Settings are a tenant's key policy.
type Settings struct {
	APIKeysEnabled        bool   `json:"api_keys_enabled"`
	MaxExpirationDays     *int   `json:"max_expiration_days"` // nil: no limit
	MaxKeysPerUser        int    `json:"max_keys_per_user"`
	MaxKeysPerServiceUser int    `json:"max_keys_per_service_user"`
	ExpiryNoticeDays      int    `json:"expiry_notice_days"`
	KeyPrefix             string `json:"key_prefix"`
}

// Ref names an event's actor or target.
type Ref struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Event is one entry of the audit log.
type Event struct {
	ID        string         `json:"id"`
	Time      time.Time      `json:"time"`
	TenantID  string         `json:"tenant_id"`
	Action    string         `json:"action"` // "key.revoked", …
	Actor     Ref            `json:"actor"`
	Target    Ref            `json:"target"`
	IP        string         `json:"ip"`
	UserAgent string         `json:"user_agent"`
	Details   map[string]any `json:"details"`
}

// VerifiedKey is the key as a verification answer shows it: what a service
// needs to authorize a request.
type VerifiedKey struct {
	ID        string         `json:"id"`
	TenantID  string         `json:"tenant_id"`
	Name      string         `json:"name"`
	OwnerID   string         `json:"owner_id"`
	Type      string         `json:"type"`
	Role      string         `json:"role"`
	Scopes    []string       `json:"scopes"`
	Meta      map[string]any `json:"meta"`
	ExpiresAt *time.Time     `json:"expires_at"`
}

// HasScope reports whether the key holds scope.
func (k *VerifiedKey) HasScope(scope string) bool {
	for _, s := range k.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// VerifyResult is the answer to Verify. Key is set for VALID and for the
// codes about a found key; never for NOT_FOUND.
type VerifyResult struct {
	Valid bool         `json:"valid"`
	Code  string       `json:"code"`
	Key   *VerifiedKey `json:"key,omitempty"`
}

// BulkRevokeResult is the answer to BulkRevoke.
type BulkRevokeResult struct {
	Revoked int                 `json:"revoked"`
	Failed  []BulkRevokeFailure `json:"failed"`
}

// BulkRevokeFailure is a key of a bulk revocation by IDs that was not revoked.
type BulkRevokeFailure struct {
	ID      string `json:"id"`
	Code    string `json:"code"` // not_found or not_revocable
	Message string `json:"message"`
}

// Usage is a key's verifications per hour, by outcome.
type Usage struct {
	KeyID   string        `json:"key_id"`
	From    time.Time     `json:"from"`
	To      time.Time     `json:"to"`
	Buckets []UsageBucket `json:"buckets"`
}

// UsageBucket is one hour of a key's use.
type UsageBucket struct {
	Hour   time.Time        `json:"hour"`   // the hour's start, UTC
	Counts map[string]int64 `json:"counts"` // by verification code: "VALID", …
	Total  int64            `json:"total"`
}

// Nullable is a request field that may be left out, set to null, or set to
// a value, for PATCH requests where null means "clear": leave it zero to
// leave the field as it is, or use Value or Null.
type Nullable[T any] struct {
	set   bool
	value *T
}

// Value sets a Nullable field to v.
func Value[T any](v T) Nullable[T] { return Nullable[T]{set: true, value: &v} }

// Null sets a Nullable field to null.
func Null[T any]() Nullable[T] { return Nullable[T]{set: true} }

// IsZero reports a field left out; with `json:",omitzero"` it is not sent.
func (n Nullable[T]) IsZero() bool { return !n.set }

// Get returns the value and whether there is one (false for null or unset).
func (n Nullable[T]) Get() (T, bool) {
	if n.value == nil {
		var zero T
		return zero, false
	}
	return *n.value, true
}

// MarshalJSON writes null or the value.
func (n Nullable[T]) MarshalJSON() ([]byte, error) {
	if n.value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*n.value)
}

// UnmarshalJSON reads null or a value; either way the field is set.
func (n *Nullable[T]) UnmarshalJSON(b []byte) error {
	n.set = true
	if string(b) == "null" {
		n.value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	n.value = &v
	return nil
}
