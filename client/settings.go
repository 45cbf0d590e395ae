package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"time"
)

// GetSettings reads the tenant's settings: GET /v1/settings.
func (c *Client) GetSettings(ctx context.Context) (*Settings, error) {
	var s Settings
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/settings", auth: true}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// SettingsUpdate is the body of PATCH /v1/settings: nil and zero fields are
// left as they are.
type SettingsUpdate struct {
	APIKeysEnabled *bool `json:"api_keys_enabled,omitempty"`
	// MaxExpirationDays: Value(n) sets the maximum, Null[int]() removes it.
	MaxExpirationDays     Nullable[int] `json:"max_expiration_days,omitzero"`
	MaxKeysPerUser        *int          `json:"max_keys_per_user,omitempty"`
	MaxKeysPerServiceUser *int          `json:"max_keys_per_service_user,omitempty"`
	ExpiryNoticeDays      *int          `json:"expiry_notice_days,omitempty"`
	KeyPrefix             *string       `json:"key_prefix,omitempty"`
}

// UpdateSettings changes the tenant's settings (tenant_admin): PATCH /v1/settings.
func (c *Client) UpdateSettings(ctx context.Context, in SettingsUpdate) (*Settings, error) {
	var s Settings
	if err := c.do(ctx, call{method: http.MethodPatch, path: "/v1/settings", body: in, auth: true}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ListEventsParams filter and page GET /v1/events; zero fields are left out.
type ListEventsParams struct {
	Action    string // "key.revoked", …
	KeyID     string
	ActorID   string
	Since     time.Time
	Until     time.Time
	PageSize  int
	PageToken string
}

// EventList is one page of events, newest first.
type EventList struct {
	Events        []Event `json:"events"`
	NextPageToken string  `json:"next_page_token"` // "" on the last page
	Total         int     `json:"total"`
}

// ListEvents reads one page of the audit log, newest first: GET /v1/events.
func (c *Client) ListEvents(ctx context.Context, p ListEventsParams) (*EventList, error) {
	q := url.Values{}
	setQuery(q, "action", p.Action)
	setQuery(q, "key_id", p.KeyID)
	setQuery(q, "actor_id", p.ActorID)
	setQueryTime(q, "since", p.Since)
	setQueryTime(q, "until", p.Until)
	setQueryInt(q, "page_size", p.PageSize)
	setQuery(q, "page_token", p.PageToken)
	var l EventList
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/events", query: q, auth: true}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// AllEvents iterates over every event that matches p, newest first.
func (c *Client) AllEvents(ctx context.Context, p ListEventsParams) iter.Seq2[*Event, error] {
	return paginate(func(token string) ([]Event, string, error) {
		p.PageToken = token
		l, err := c.ListEvents(ctx, p)
		if err != nil {
			return nil, "", err
		}
		return l.Events, l.NextPageToken, nil
	}, p.PageToken)
}

// Ready reports whether the server can reach its database: GET /readyz.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, call{method: http.MethodGet, path: "/readyz"}, nil)
}
