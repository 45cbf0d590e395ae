package api

import (
	"encoding/json"
	"time"

	"github.com/keyward/keyward"
)

// The JSON shapes of the contract's objects. Times are UTC RFC 3339; absent
// times are null; lists are never null.

type userJSON struct {
	ID        string    `json:"id"`
	TenantID  string    `json:"tenant_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Roles     []string  `json:"roles"`
	Licensed  bool      `json:"licensed"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func renderUser(u *keyward.User) userJSON {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userJSON{ID: u.ID, TenantID: u.TenantID, Email: u.Email, Name: u.Name, Kind: u.Kind, Roles: roles,
		Licensed: u.Licensed, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
}

type keyJSON struct {
	ID           string          `json:"id"`
	TenantID     string          `json:"tenant_id"`
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	OwnerID      string          `json:"owner_id"`
	OwnerName    string          `json:"owner_name"`
	OwnerEmail   string          `json:"owner_email"`
	Type         string          `json:"type"`
	Role         string          `json:"role"`
	Scopes       []string        `json:"scopes"`
	Meta         json.RawMessage `json:"meta"`
	Status       string          `json:"status"`
	Start        string          `json:"start"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	ExpiresAt    *time.Time      `json:"expires_at"`
	LastUsedAt   *time.Time      `json:"last_used_at"`
	RevokedAt    *time.Time      `json:"revoked_at"`
	RevokedBy    *string         `json:"revoked_by"`
	RevokeReason *string         `json:"revoke_reason"`
	// RateLimit is Keyward's addition to the contract's Key: null, or the
	// verifications the key may pass per window.
	RateLimit *keyward.RateLimit `json:"rate_limit"`
	// Secret is set only in the answers to create and rotate.
	Secret string `json:"secret,omitempty"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func renderKey(k *keyward.Key, now time.Time) keyJSON {
	scopes := k.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	meta := k.Meta
	if len(meta) == 0 {
		meta = json.RawMessage(`{}`)
	}
	return keyJSON{ID: k.ID, TenantID: k.TenantID, Name: k.Name, Description: k.Description,
		OwnerID: k.OwnerID, OwnerName: k.OwnerName, OwnerEmail: k.OwnerEmail, Type: k.Type, Role: k.Role,
		Scopes: scopes, Meta: meta, Status: k.Status(now), Start: k.Start,
		CreatedAt: k.CreatedAt.UTC(), UpdatedAt: k.UpdatedAt.UTC(), ExpiresAt: utcPtr(k.ExpiresAt),
		LastUsedAt: utcPtr(k.LastUsedAt), RevokedAt: utcPtr(k.RevokedAt), RevokedBy: k.RevokedBy, RevokeReason: k.RevokeReason,
		RateLimit: k.RateLimit}
}

func renderKeys(keys []*keyward.Key, now time.Time) []keyJSON {
	out := make([]keyJSON, len(keys))
	for i, k := range keys {
		out[i] = renderKey(k, now)
	}
	return out
}

type eventJSON struct {
	ID        string         `json:"id"`
	Time      time.Time      `json:"time"`
	TenantID  string         `json:"tenant_id"`
	Action    string         `json:"action"`
	Actor     keyward.Ref    `json:"actor"`
	Target    keyward.Ref    `json:"target"`
	IP        string         `json:"ip"`
	UserAgent string         `json:"user_agent"`
	Details   map[string]any `json:"details"`
}

func renderEvent(e *keyward.Event) eventJSON {
	d := e.Details
	if d == nil {
		d = map[string]any{}
	}
	return eventJSON{ID: e.ID, Time: e.Time.UTC(), TenantID: e.TenantID, Action: e.Action, Actor: e.Actor,
		Target: e.Target, IP: e.IP, UserAgent: e.UserAgent, Details: d}
}

// nextToken renders "" as the contract's null.
func nextToken(t string) *string {
	if t == "" {
		return nil
	}
	return &t
}

// verifyKeyJSON is the key as a verification answer shows it: what a service
// needs to authorize, nothing about other keys or owners.
type verifyKeyJSON struct {
	ID        string          `json:"id"`
	TenantID  string          `json:"tenant_id"`
	Name      string          `json:"name"`
	OwnerID   string          `json:"owner_id"`
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Scopes    []string        `json:"scopes"`
	Meta      json.RawMessage `json:"meta"`
	ExpiresAt *time.Time      `json:"expires_at"`
}

type verifyJSON struct {
	Valid bool           `json:"valid"`
	Code  string         `json:"code"`
	Key   *verifyKeyJSON `json:"key,omitempty"`
}

func renderVerify(res keyward.VerifyResult) verifyJSON {
	out := verifyJSON{Valid: res.Valid(), Code: res.Code}
	if k := res.Key; k != nil {
		scopes := k.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		meta := k.Meta
		if len(meta) == 0 {
			meta = json.RawMessage(`{}`)
		}
		out.Key = &verifyKeyJSON{ID: k.ID, TenantID: k.TenantID, Name: k.Name, OwnerID: k.OwnerID, Type: k.Type,
			Role: k.Role, Scopes: scopes, Meta: meta, ExpiresAt: utcPtr(k.ExpiresAt)}
	}
	return out
}
