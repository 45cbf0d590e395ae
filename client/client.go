// Package client is the Go client of Keyward's HTTP API v1: a typed method
// for every endpoint of the contract, errors that carry the server's problem
// document, iterators that follow page tokens, and an http.Handler
// middleware that verifies API keys for a Go service with a short local
// cache.
//
// A Client is safe for concurrent use. It sends its credential (an API key
// or a session token) as "Authorization: Bearer", and only to the endpoints
// that need one: login and verification never carry it.
//
//	c := client.New("https://keyward.example.com", client.WithAPIKey(os.Getenv("KEYWARD_API_KEY")))
//	k, err := c.CreateKey(ctx, client.CreateKeyRequest{Name: "billing"})
//	if client.IsCode(err, client.CodeKeyLimitReached) { … }
//
// The client never logs, and no error it returns holds a credential or a
// secret.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultUserAgent is sent when WithUserAgent is not given.
const DefaultUserAgent = "keyward-go-client/1"

// maxResponseBytes bounds what the client reads of one answer: a page of 200
// keys is far below it, and a misbehaving proxy cannot exhaust memory.
const maxResponseBytes = 32 << 20

// Client talks to one Keyward server with one credential.
type Client struct {
	base       string
	credential string
	hc         *http.Client
	userAgent  string
}

// Option configures a Client.
type Option func(*Client)

// WithAPIKey authenticates with an API key ("Authorization: Bearer <key>").
func WithAPIKey(key string) Option { return func(c *Client) { c.credential = key } }

// WithSessionToken authenticates with a token from Login.
func WithSessionToken(token string) Option { return func(c *Client) { c.credential = token } }

// WithHTTPClient sends requests through hc (timeouts, proxies, transports);
// the default is a client with a 30-second timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithUserAgent names the caller in the server's audit events.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New makes a client for the server at baseURL (such as
// "http://127.0.0.1:8080"; a trailing slash is ignored).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), userAgent: DefaultUserAgent}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	return c
}

// With returns a copy of c with more options applied, such as another
// credential after Login; c itself is unchanged.
func (c *Client) With(opts ...Option) *Client {
	cp := *c
	for _, o := range opts {
		o(&cp)
	}
	return &cp
}

// BaseURL is the server's address as given to New, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// call is one request: auth says whether the credential goes with it.
type call struct {
	method string
	path   string
	query  url.Values
	body   any // nil: no body
	auth   bool
	want   int // the success status; 0 is any 2xx
}

// do sends a request and decodes a successful answer into out (when not nil).
// Any answer of 400 or more is an *Error.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return fmt.Errorf("keyward: encode %s %s: %w", cl.method, cl.path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return fmt.Errorf("keyward: %w", err)
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", c.userAgent)
	if cl.auth && c.credential != "" {
		req.Header.Set("Authorization", "Bearer "+c.credential)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error names the method and URL, never the headers.
		return fmt.Errorf("keyward: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("keyward: %s %s: read answer: %w", cl.method, cl.path, err)
	}
	if len(data) > maxResponseBytes {
		return fmt.Errorf("keyward: %s %s: answer over %d bytes", cl.method, cl.path, maxResponseBytes)
	}
	if resp.StatusCode >= 400 {
		return decodeError(resp, data)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 || (cl.want != 0 && resp.StatusCode != cl.want) {
		return &Error{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode),
			Detail: fmt.Sprintf("unexpected status %d for %s %s", resp.StatusCode, cl.method, cl.path)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("keyward: %s %s: decode answer: %w", cl.method, cl.path, err)
	}
	return nil
}

// pathID escapes an ID for a path segment; an empty ID is a caller's mistake
// that would otherwise address another endpoint.
func pathID(kind, id string) (string, error) {
	if id == "" {
		return "", errors.New("keyward: empty " + kind + " id")
	}
	return url.PathEscape(id), nil
}

// setQuery adds v to q when it is not empty.
func setQuery(q url.Values, name, v string) {
	if v != "" {
		q.Set(name, v)
	}
}

func setQueryInt(q url.Values, name string, v int) {
	if v != 0 {
		q.Set(name, fmt.Sprint(v))
	}
}

func setQueryTime(q url.Values, name string, t time.Time) {
	if !t.IsZero() {
		q.Set(name, t.UTC().Format(time.RFC3339Nano))
	}
}

// Ptr returns a pointer to v, for the optional fields of requests.
func Ptr[T any](v T) *T { return &v }
