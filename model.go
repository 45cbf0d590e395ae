package keyward

import (
	"encoding/json"
	"time"
)

// User kinds: a person logs in; a system user is a service that only owns keys.
const (
	KindUser   = "user"
	KindSystem = "system"
)

// Roles a user may hold.
const (
	RoleTenantAdmin = "tenant_admin"
	RoleDeveloper   = "developer"
)

// Key roles: what a key may do on the owner's behalf.
const (
	KeyRoleAdmin    = "admin"
	KeyRoleReadonly = "readonly"
)

// Key statuses. Status is derived from stored state and the clock (see Key.Status).
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
	StatusRevoked  = "revoked"
	StatusExpired  = "expired"
)

// Tenant is an organisation; nothing is ever shared between two of them.
type Tenant struct {
	ID        string
	Name      string
	CreatedAt time.Time
	Settings  Settings
}

// Settings govern all keys of one tenant.
type Settings struct {
	APIKeysEnabled        bool   `json:"api_keys_enabled"`
	MaxExpirationDays     *int   `json:"max_expiration_days"`
	MaxKeysPerUser        int    `json:"max_keys_per_user"`
	MaxKeysPerServiceUser int    `json:"max_keys_per_service_user"`
	ExpiryNoticeDays      int    `json:"expiry_notice_days"`
	KeyPrefix             string `json:"key_prefix"`
}

// DefaultSettings are a new tenant's: keys off until an administrator turns them on.
func DefaultSettings() Settings {
	return Settings{
		APIKeysEnabled:        false,
		MaxKeysPerUser:        5,
		MaxKeysPerServiceUser: 10,
		ExpiryNoticeDays:      14,
		KeyPrefix:             "kw",
	}
}

// MaxKeysFor is the most live keys an owner of the given kind may hold.
func (s Settings) MaxKeysFor(kind string) int {
	if kind == KindSystem {
		return s.MaxKeysPerServiceUser
	}
	return s.MaxKeysPerUser
}

// User is a person (kind "user") or a service user (kind "system") of a tenant.
type User struct {
	ID           string
	TenantID     string
	Email        string
	Name         string
	Kind         string
	Roles        []string
	Licensed     bool
	PasswordHash string // PHC-formatted argon2id; empty: cannot log in
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// HasRole reports whether u holds role.
func (u *User) HasRole(role string) bool {
	for _, r := range u.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// IsAdmin reports whether u administers its tenant.
func (u *User) IsAdmin() bool { return u.HasRole(RoleTenantAdmin) }

// IsDeveloper reports whether u may create keys for itself.
func (u *User) IsDeveloper() bool { return u.HasRole(RoleDeveloper) }

// Key is an API key as stored: never the secret, only its HMAC and a short start.
type Key struct {
	ID           string
	TenantID     string
	Name         string
	Description  string
	OwnerID      string
	Role         string
	Scopes       []string
	Meta         json.RawMessage // a JSON object; never nil once stored
	Hash         []byte          // HMAC-SHA-256 of the secret under the server pepper
	Start        string          // first characters of the secret, for display
	Disabled     bool            // deactivated (reversible)
	CreatedAt    time.Time
	UpdatedAt    time.Time
	ExpiresAt    *time.Time
	LastUsedAt   *time.Time
	RevokedAt    *time.Time
	RevokedBy    *string
	RevokeReason *string
	RateLimit    *RateLimit // nil: no per-key limit

	// Joined from the owner, read-only for stores.
	OwnerName  string
	OwnerEmail string
	Type       string // the owner's kind: "user" or "system"
}

// Status derives the key's status at now. Revocation is terminal and wins;
// expiry follows from the clock; deactivation is reversible.
func (k *Key) Status(now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return StatusRevoked
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return StatusExpired
	case k.Disabled:
		return StatusInactive
	default:
		return StatusActive
	}
}

// Live reports whether the key counts against its owner's maximum: active or inactive.
func (k *Key) Live(now time.Time) bool {
	s := k.Status(now)
	return s == StatusActive || s == StatusInactive
}

// RateLimit caps how many verifications a key may pass per window.
type RateLimit struct {
	Limit         int `json:"limit"`
	WindowSeconds int `json:"window_seconds"`
}

// Window is the limit's window as a duration.
func (r RateLimit) Window() time.Duration { return time.Duration(r.WindowSeconds) * time.Second }

// Session is a logged-in person's token, stored as a hash.
type Session struct {
	ID        string
	TenantID  string
	UserID    string
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Actor and target types of events.
const (
	ActorUser   = "user"
	ActorKey    = "key"
	ActorSystem = "system"

	TargetKey      = "key"
	TargetUser     = "user"
	TargetSettings = "settings"
	TargetTenant   = "tenant"
)

// Event actions.
const (
	ActionKeyCreated      = "key.created"
	ActionKeyUpdated      = "key.updated"
	ActionKeyDeactivated  = "key.deactivated"
	ActionKeyReactivated  = "key.reactivated"
	ActionKeyRevoked      = "key.revoked"
	ActionKeyRotated      = "key.rotated"
	ActionKeyDeleted      = "key.deleted"
	ActionKeyExpired      = "key.expired"
	ActionUserCreated     = "user.created"
	ActionUserUpdated     = "user.updated"
	ActionUserDeleted     = "user.deleted"
	ActionSettingsUpdated = "settings.updated"
	ActionSessionCreated  = "session.created"
	ActionAuthFailed      = "auth.failed"
	ActionTenantCreated   = "tenant.created"
	ActionKeyUsageSpike   = "key.usage_spike"
)

// Ref names an actor or a target of an event.
type Ref struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Event is one line of a tenant's audit trail. Events are only ever inserted.
type Event struct {
	ID        string
	Time      time.Time
	TenantID  string
	Action    string
	Actor     Ref
	Target    Ref
	IP        string
	UserAgent string
	Details   map[string]any

	// ActorUserID is the person or service behind the actor (the owner when a
	// key acts); TargetOwnerID is the user a target key belongs to, or the target
	// user itself. Both serve "events about me" for non-administrators.
	ActorUserID   string
	TargetOwnerID string
}
