package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
)

// Login opens a session for a person: POST /v1/sessions. Use the token with
// c.With(WithSessionToken(s.Token)). A wrong email or password is an *Error
// with CodeUnauthenticated.
func (c *Client) Login(ctx context.Context, email, password string) (*Session, error) {
	var s Session
	body := map[string]string{"email": email, "password": password}
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/sessions", body: body, want: http.StatusCreated}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Logout ends the session the client's token belongs to: DELETE /v1/sessions/current.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, call{method: http.MethodDelete, path: "/v1/sessions/current", auth: true, want: http.StatusNoContent}, nil)
}

// Me tells who the credential acts as: GET /v1/me.
func (c *Client) Me(ctx context.Context) (*Identity, error) {
	var me Identity
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/me", auth: true}, &me); err != nil {
		return nil, err
	}
	return &me, nil
}

// ListUsersParams filter and page GET /v1/users; zero fields are left out.
type ListUsersParams struct {
	Q         string // substring of name or email
	Kind      string // KindUser or KindSystem
	PageSize  int    // 1..200; 0 is the server's default (50)
	PageToken string // from the previous page's NextPageToken
}

// UserList is one page of users.
type UserList struct {
	Users         []User `json:"users"`
	NextPageToken string `json:"next_page_token"` // "" on the last page
	Total         int    `json:"total"`
}

// ListUsers reads one page of the tenant's users: GET /v1/users.
func (c *Client) ListUsers(ctx context.Context, p ListUsersParams) (*UserList, error) {
	q := url.Values{}
	setQuery(q, "q", p.Q)
	setQuery(q, "kind", p.Kind)
	setQueryInt(q, "page_size", p.PageSize)
	setQuery(q, "page_token", p.PageToken)
	var l UserList
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/users", query: q, auth: true}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// AllUsers iterates over every user that matches p, page after page; it
// stops at the first error, which it yields.
func (c *Client) AllUsers(ctx context.Context, p ListUsersParams) iter.Seq2[*User, error] {
	return paginate(func(token string) ([]User, string, error) {
		p.PageToken = token
		l, err := c.ListUsers(ctx, p)
		if err != nil {
			return nil, "", err
		}
		return l.Users, l.NextPageToken, nil
	}, p.PageToken)
}

// CreateUserRequest is the body of POST /v1/users.
type CreateUserRequest struct {
	Email string   `json:"email"`
	Name  string   `json:"name"`
	Kind  string   `json:"kind"` // KindUser or KindSystem
	Roles []string `json:"roles"`
	// Licensed: nil is the server's default.
	Licensed *bool `json:"licensed,omitempty"`
	// Password of a person, at least 12 characters; "" for none.
	Password string `json:"password,omitempty"`
}

// CreateUser adds a person or a system user: POST /v1/users. A duplicate
// email is CodeConflict.
func (c *Client) CreateUser(ctx context.Context, in CreateUserRequest) (*User, error) {
	if in.Roles == nil {
		in.Roles = []string{}
	}
	var u User
	if err := c.do(ctx, call{method: http.MethodPost, path: "/v1/users", body: in, auth: true, want: http.StatusCreated}, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// GetUser reads one user: GET /v1/users/{id}.
func (c *Client) GetUser(ctx context.Context, id string) (*User, error) {
	p, err := pathID("user", id)
	if err != nil {
		return nil, err
	}
	var u User
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/users/" + p, auth: true}, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// UpdateUserRequest is the body of PATCH /v1/users/{id}: nil fields are
// left as they are.
type UpdateUserRequest struct {
	Name *string `json:"name,omitempty"`
	// Roles replaces the user's roles: nil leaves them, an empty non-nil
	// slice removes them all.
	Roles    []string `json:"roles,omitzero"`
	Licensed *bool    `json:"licensed,omitempty"`
	Password *string  `json:"password,omitempty"`
}

// UpdateUser changes a user's name, roles, license or password: PATCH /v1/users/{id}.
func (c *Client) UpdateUser(ctx context.Context, id string, in UpdateUserRequest) (*User, error) {
	p, err := pathID("user", id)
	if err != nil {
		return nil, err
	}
	var u User
	if err := c.do(ctx, call{method: http.MethodPatch, path: "/v1/users/" + p, body: in, auth: true}, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// DeleteUser removes a user and every key of that user: DELETE /v1/users/{id}.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	p, err := pathID("user", id)
	if err != nil {
		return err
	}
	return c.do(ctx, call{method: http.MethodDelete, path: "/v1/users/" + p, auth: true, want: http.StatusNoContent}, nil)
}
