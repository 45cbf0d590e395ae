package client

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"time"
)

// ListKeysParams filter, sort and page GET /v1/keys; zero fields are left out.
type ListKeysParams struct {
	Q       string // case-insensitive substring of key name, key ID, owner name or email
	Type    string // TypeUser or TypeSystem
	Status  string // StatusActive, …
	OwnerID string
	// Sort is a column (name, id, owner, type, role, status, created_at,
	// updated_at, expires_at, last_used_at), "-" first for descending;
	// "" is the server's default, -created_at.
	Sort      string
	PageSize  int    // 1..200; 0 is the server's default (50)
	PageToken string // from the previous page's NextPageToken
}

// KeyList is one page of keys.
type KeyList struct {
	Keys          []Key  `json:"keys"`
	NextPageToken string `json:"next_page_token"` // "" on the last page
	Total         int    `json:"total"`
}

func (p ListKeysParams) query() url.Values {
	q := url.Values{}
	setQuery(q, "q", p.Q)
	setQuery(q, "type", p.Type)
	setQuery(q, "status", p.Status)
	setQuery(q, "owner_id", p.OwnerID)
	setQuery(q, "sort", p.Sort)
	setQueryInt(q, "page_size", p.PageSize)
	setQuery(q, "page_token", p.PageToken)
	return q
}

// ListKeys reads one page of keys: GET /v1/keys. A tenant_admin sees every
// key of the tenant, anyone else only their own.
func (c *Client) ListKeys(ctx context.Context, p ListKeysParams) (*KeyList, error) {
	var l KeyList
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys", query: p.query(), auth: true}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// AllKeys iterates over every key that matches p, page after page; it stops
// at the first error, which it yields.
//
//	for k, err := range c.AllKeys(ctx, client.ListKeysParams{Status: client.StatusActive}) {
//		if err != nil { return err }
//		fmt.Println(k.ID, k.Name)
//	}
func (c *Client) AllKeys(ctx context.Context, p ListKeysParams) iter.Seq2[*Key, error] {
	return paginate(func(token string) ([]Key, string, error) {
		p.PageToken = token
		l, err := c.ListKeys(ctx, p)
		if err != nil {
			return nil, "", err
		}
		return l.Keys, l.NextPageToken, nil
	}, p.PageToken)
}

// CreateKeyRequest is the body of POST /v1/keys; only Name is required.
type CreateKeyRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// OwnerID: "" is the caller's user.
	OwnerID string `json:"owner_id,omitempty"`
	// Role: KeyRoleAdmin or KeyRoleReadonly; "" is readonly.
	Role   string         `json:"role,omitempty"`
	Scopes []string       `json:"scopes,omitempty"`
	Meta   map[string]any `json:"meta,omitempty"`
	// ExpiresAt: nil is the tenant's maximum, else never.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// RateLimit: nil is no per-key limit.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// CreateKey issues a key: POST /v1/keys. The answer holds the secret, the
// only time it is ever shown.
func (c *Client) CreateKey(ctx context.Context, in CreateKeyRequest) (*CreatedKey, error) {
	if in.ExpiresAt != nil {
		t := in.ExpiresAt.UTC()
		in.ExpiresAt = &t
	}
	var k CreatedKey
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/keys", body: in, auth: true, want: http.StatusCreated}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// GetKey reads one key: GET /v1/keys/{id}.
func (c *Client) GetKey(ctx context.Context, id string) (*Key, error) {
	p, err := pathID("key", id)
	if err != nil {
		return nil, err
	}
	var k Key
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys/" + p, auth: true}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// UpdateKeyRequest is the body of PATCH /v1/keys/{id}: nil or zero fields
// are left as they are.
type UpdateKeyRequest struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
	// RateLimit: Value sets a limit, Null removes it.
	RateLimit Nullable[RateLimit] `json:"rate_limit,omitzero"`
}

// UpdateKey renames a key or changes its description or rate limit: PATCH /v1/keys/{id}.
func (c *Client) UpdateKey(ctx context.Context, id string, in UpdateKeyRequest) (*Key, error) {
	return c.keyCall(ctx, http.MethodPatch, id, "", in, http.StatusOK)
}

// DeleteKey removes a key whatever its status: DELETE /v1/keys/{id}.
func (c *Client) DeleteKey(ctx context.Context, id string) error {
	p, err := pathID("key", id)
	if err != nil {
		return err
	}
	return c.do(ctx, call{method: http.MethodDelete, path: "/v1/keys/" + p, auth: true, want: http.StatusNoContent}, nil)
}

// DeactivateKey turns an active key off, reversibly: POST /v1/keys/{id}/deactivate.
func (c *Client) DeactivateKey(ctx context.Context, id string) (*Key, error) {
	return c.keyCall(ctx, http.MethodPost, id, "/deactivate", nil, http.StatusOK)
}

// ReactivateKey turns an inactive key back on: POST /v1/keys/{id}/reactivate.
func (c *Client) ReactivateKey(ctx context.Context, id string) (*Key, error) {
	return c.keyCall(ctx, http.MethodPost, id, "/reactivate", nil, http.StatusOK)
}

// RevokeKey revokes a key for good: POST /v1/keys/{id}/revoke. reason may be
// "". A revoked or expired key is CodeNotRevocable.
func (c *Client) RevokeKey(ctx context.Context, id, reason string) (*Key, error) {
	body := map[string]string{}
	if reason != "" {
		body["reason"] = reason
	}
	return c.keyCall(ctx, http.MethodPost, id, "/revoke", body, http.StatusOK)
}

// RotateKey issues a new key like an active one and lets the old one expire
// after grace: POST /v1/keys/{id}/rotate. nil grace is the server's default
// (24 hours); zero expires the old key at once; grace counts in whole
// seconds, rounded down. The answer holds the new secret.
func (c *Client) RotateKey(ctx context.Context, id string, grace *time.Duration) (*CreatedKey, error) {
	p, err := pathID("key", id)
	if err != nil {
		return nil, err
	}
	var body any
	if grace != nil {
		if *grace < 0 {
			return nil, errors.New("keyward: a negative grace period")
		}
		body = map[string]int64{"grace_period_seconds": int64(*grace / time.Second)}
	}
	var k CreatedKey
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/keys/" + p + "/rotate", body: body, auth: true,
		want: http.StatusCreated}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

func (c *Client) keyCall(ctx context.Context, method, id, action string, body any, want int) (*Key, error) {
	p, err := pathID("key", id)
	if err != nil {
		return nil, err
	}
	var k Key
	if err := c.do(ctx, call{method: method, path: "/v1/keys/" + p + action, body: body, auth: true, want: want}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// BulkRevokeRequest names the keys of POST /v1/keys/revoke: exactly one of
// IDs, Type or All.
type BulkRevokeRequest struct {
	IDs    []string `json:"ids,omitempty"`  // 1..1000 key IDs
	Type   string   `json:"type,omitempty"` // every key of this type: TypeUser or TypeSystem
	All    bool     `json:"all,omitempty"`  // every key of the tenant
	Reason string   `json:"reason,omitempty"`
}

// BulkRevoke revokes many keys at once: POST /v1/keys/revoke. By IDs, each
// key that could not be revoked is in Failed.
func (c *Client) BulkRevoke(ctx context.Context, in BulkRevokeRequest) (*BulkRevokeResult, error) {
	var r BulkRevokeResult
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/keys/revoke", body: in, auth: true}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// VerifyRequest is the body of POST /v1/keys/verify.
type VerifyRequest struct {
	Key           string   `json:"key"`
	RequireRole   string   `json:"require_role,omitempty"`   // e.g. KeyRoleAdmin
	RequireScopes []string `json:"require_scopes,omitempty"` // all of them
}

// Verify asks whether a key is good: POST /v1/keys/verify. It needs no
// credential and does not send the client's. A failing key is not an error:
// read Valid and Code. Too many failures from this address are an *Error
// with CodeTooManyRequests and RetryAfter.
func (c *Client) Verify(ctx context.Context, in VerifyRequest) (*VerifyResult, error) {
	var r VerifyResult
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/keys/verify", body: in}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Usage reads a key's verifications per hour and outcome:
// GET /v1/keys/{id}/usage?from=&to=. Zero times are left to the server.
func (c *Client) Usage(ctx context.Context, keyID string, from, to time.Time) (*Usage, error) {
	p, err := pathID("key", keyID)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	setQueryTime(q, "from", from)
	setQueryTime(q, "to", to)
	var u Usage
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys/" + p + "/usage", query: q, auth: true}, &u); err != nil {
		return nil, err
	}
	return &u, nil
}
