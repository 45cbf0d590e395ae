package main

// Per-key rate limits and usage counts over real HTTP: every response is
// checked against the OpenAPI document by the client.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

type apiRateLimit struct {
	Limit         int `json:"limit"`
	WindowSeconds int `json:"window_seconds"`
}

// limitedKey is a Key with the rate_limit the contract's Key gained.
type limitedKey struct {
	apiKey
	RateLimit *apiRateLimit `json:"rate_limit"`
}

type usageBucket struct {
	Hour   time.Time        `json:"hour"`
	Counts map[string]int64 `json:"counts"`
	Total  int64            `json:"total"`
}

type usageAnswer struct {
	KeyID   string        `json:"key_id"`
	From    time.Time     `json:"from"`
	To      time.Time     `json:"to"`
	Buckets []usageBucket `json:"buckets"`
}

// sums adds a usage answer's buckets up by code, checking each bucket's total.
func (u usageAnswer) sums(tb testing.TB) map[string]int64 {
	tb.Helper()
	out := map[string]int64{}
	for i, b := range u.Buckets {
		var n int64
		for code, c := range b.Counts {
			out[code] += c
			n += c
		}
		if n != b.Total {
			tb.Errorf("bucket %s: total %d, counts add up to %d", b.Hour, b.Total, n)
		}
		if !b.Hour.Equal(b.Hour.Truncate(time.Hour)) || b.Hour.Before(u.From) || !b.Hour.Before(u.To) {
			tb.Errorf("bucket hour %s: not a whole hour in [%s, %s)", b.Hour, u.From, u.To)
		}
		if i > 0 && !b.Hour.After(u.Buckets[i-1].Hour) {
			tb.Errorf("buckets not oldest first: %s after %s", b.Hour, u.Buckets[i-1].Hour)
		}
	}
	return out
}

func (c *client) keyUsage(tb testing.TB, cred, id string, q url.Values) usageAnswer {
	tb.Helper()
	var u usageAnswer
	path := "/v1/keys/" + id + "/usage"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	c.must(tb, http.StatusOK, "GET", path, cred, nil, &u)
	if u.KeyID != id || u.Buckets == nil {
		tb.Fatalf("usage of %s: key_id %q, buckets %v", id, u.KeyID, u.Buckets)
	}
	return u
}

// waitUsage polls a key's usage (every 50 ms, up to 10 s) until done accepts its sums.
func (c *client) waitUsage(tb testing.TB, cred, id string, done func(map[string]int64) bool) map[string]int64 {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sums := c.keyUsage(tb, cred, id, nil).sums(tb)
		if done(sums) {
			return sums
		}
		if time.Now().After(deadline) {
			tb.Fatalf("usage of %s after 10 s: %v", id, sums)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func wantLimit(tb testing.TB, what string, got *apiRateLimit, want *apiRateLimit) {
	tb.Helper()
	if (got == nil) != (want == nil) || got != nil && *got != *want {
		tb.Errorf("%s: rate_limit %+v, want %+v", what, got, want)
	}
}

// auth asks /v1/auth about secret as a gateway would.
func (c *client) auth(tb testing.TB, secret string) *response {
	tb.Helper()
	return c.send(tb, "GET", "/v1/auth", http.Header{"Authorization": {"Bearer " + secret}}, nil)
}

func TestRateLimitAndUsage(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, t.TempDir(), rec, serverOpts{})
	c := srv.c
	tn := srv.newTenant(t, "ratelimits")
	p := addPeople(t, c, tn)
	other := srv.newTenant(t, "elsewhere")

	// rate_limit is on every key: null without one.
	var plain limitedKey
	r := c.must(t, http.StatusCreated, "POST", "/v1/keys", p.devTok, map[string]any{"name": "plain"}, &plain)
	wantLimit(t, "a key created without a limit", plain.RateLimit, nil)
	if raw := map[string]json.RawMessage{}; json.Unmarshal(r.body, &raw) != nil || string(raw["rate_limit"]) != "null" {
		t.Errorf("a key without a limit: rate_limit %s, want null", raw["rate_limit"])
	}

	var k limitedKey
	c.must(t, http.StatusCreated, "POST", "/v1/keys", p.devTok,
		map[string]any{"name": "limited", "rate_limit": map[string]any{"limit": 3, "window_seconds": 3600}}, &k)
	want := &apiRateLimit{Limit: 3, WindowSeconds: 3600}
	wantLimit(t, "created", k.RateLimit, want)
	var got limitedKey
	c.must(t, http.StatusOK, "GET", "/v1/keys/"+k.ID, p.devTok, nil, &got)
	wantLimit(t, "read back", got.RateLimit, want)
	var list struct {
		Keys []limitedKey `json:"keys"`
	}
	c.must(t, http.StatusOK, "GET", "/v1/keys?q=limited", tn.Session, nil, &list)
	if len(list.Keys) != 1 || list.Keys[0].ID != k.ID {
		t.Fatalf("listing by name: %+v", list.Keys)
	}
	wantLimit(t, "listed", list.Keys[0].RateLimit, want)

	// Out of bounds or malformed: 400, and no key.
	for _, bad := range []any{
		map[string]any{"limit": 0, "window_seconds": 60},
		map[string]any{"limit": 1000000001, "window_seconds": 60},
		map[string]any{"limit": 5, "window_seconds": 86401},
		map[string]any{"limit": 5},
		map[string]any{"limit": 5, "window_seconds": 60, "burst": 1},
		map[string]any{"limit": "5", "window_seconds": 60},
		"5/60s",
	} {
		c.fail(t, http.StatusBadRequest, "invalid_argument", "POST", "/v1/keys", p.devTok, map[string]any{"name": "bad", "rate_limit": bad})
		c.fail(t, http.StatusBadRequest, "invalid_argument", "PATCH", "/v1/keys/"+k.ID, p.devTok, map[string]any{"rate_limit": bad})
	}
	// (A random key ID may hold "bad" too: only the name tells.)
	for _, k := range c.listKeys(t, p.devTok, url.Values{"q": {"bad"}}).Keys {
		if k.Name == "bad" {
			t.Errorf("a refused create made key %s", k.ID)
		}
	}

	// Three verifications pass; the fourth is over the limit: 200, not valid.
	for range 3 {
		c.wantVerify(t, k.Secret, "VALID", k.ID)
	}
	c.wantVerify(t, k.Secret, "RATE_LIMITED", k.ID)
	if v := c.verify(t, k.Secret); v.Valid || v.Code != "RATE_LIMITED" {
		t.Errorf("over the limit: %+v", v)
	}
	// The other key is not limited by this one.
	for range 5 {
		c.wantVerify(t, plain.Secret, "VALID", plain.ID)
	}

	// A gateway gets 429 with the code and when to retry.
	ar := c.auth(t, k.Secret)
	if ar.status != http.StatusTooManyRequests || ar.header.Get("X-Keyward-Code") != "RATE_LIMITED" {
		t.Fatalf("/v1/auth over the limit: %s with X-Keyward-Code %q, want 429 RATE_LIMITED", ar, ar.header.Get("X-Keyward-Code"))
	}
	if s, err := strconv.Atoi(ar.header.Get("Retry-After")); err != nil || s < 1 || s > 3600 {
		t.Errorf("/v1/auth over the limit: Retry-After %q, want 1..3600 seconds", ar.header.Get("Retry-After"))
	}
	if ar := c.auth(t, plain.Secret); ar.status != http.StatusOK || ar.header.Get("X-Keyward-Key-Id") != plain.ID {
		t.Errorf("/v1/auth with the unlimited key: %s", ar)
	}

	// Usage: 3 VALID and the refusals, within 10 s (the usage flush interval).
	sums := c.waitUsage(t, p.devTok, k.ID, func(s map[string]int64) bool {
		return s["VALID"] >= 3 && s["RATE_LIMITED"] >= 3
	})
	if sums["VALID"] != 3 || sums["RATE_LIMITED"] != 3 || len(sums) != 2 {
		t.Errorf("usage of the limited key: %v, want VALID 3 and RATE_LIMITED 3 (two verifications, one auth)", sums)
	}
	c.waitLastUsed(t, p.devTok, k.ID)
	u := c.keyUsage(t, tn.Session, k.ID, nil) // the administrator sees it too
	if u.To.Sub(u.From) != 24*time.Hour || !u.To.Equal(u.To.Truncate(time.Hour)) || time.Until(u.To) > time.Hour || time.Until(u.To) < 0 {
		t.Errorf("default range [%s, %s): want the 24 hours up to the end of the current hour", u.From, u.To)
	}
	plainSums := c.waitUsage(t, p.devTok, plain.ID, func(s map[string]int64) bool { return s["VALID"] >= 6 })
	if plainSums["VALID"] != 6 || len(plainSums) != 1 {
		t.Errorf("usage of the unlimited key: %v, want VALID 6", plainSums)
	}

	// Explicit ranges: rounded to hours; the past day has nothing.
	now := time.Now().UTC()
	u = c.keyUsage(t, p.devTok, k.ID, url.Values{"from": {now.Add(-90 * time.Minute).Format(time.RFC3339Nano)},
		"to": {now.Add(time.Second).Format(time.RFC3339)}})
	if !u.From.Equal(now.Add(-90*time.Minute).Truncate(time.Hour)) || u.To.Sub(u.From) > 3*time.Hour || !u.To.Equal(u.To.Truncate(time.Hour)) {
		t.Errorf("range [%s, %s) for the last 90 minutes", u.From, u.To)
	}
	if s := u.sums(t); s["VALID"] != 3 {
		t.Errorf("usage of the last 90 minutes: %v", s)
	}
	u = c.keyUsage(t, p.devTok, k.ID, url.Values{"from": {now.Add(-48 * time.Hour).Format(time.RFC3339)},
		"to": {now.Add(-24 * time.Hour).Format(time.RFC3339)}})
	if len(u.Buckets) != 0 {
		t.Errorf("usage of the day before: %+v", u.Buckets)
	}

	// Refusals.
	path := "/v1/keys/" + k.ID + "/usage"
	for _, q := range []string{
		"from=yesterday",
		"to=2026-13-01T00:00:00Z",
		"from=" + url.QueryEscape(now.Format(time.RFC3339)) + "&to=" + url.QueryEscape(now.Add(-2*time.Hour).Format(time.RFC3339)),
		"from=" + url.QueryEscape(now.Add(-32*24*time.Hour).Format(time.RFC3339)),
		"from=9999-12-31T20:00:00Z&to=9999-12-31T23:30:00Z",
	} {
		c.fail(t, http.StatusBadRequest, "invalid_argument", "GET", path+"?"+q, p.devTok, nil)
	}
	c.fail(t, http.StatusUnauthorized, "unauthenticated", "GET", path, "", nil)
	c.fail(t, http.StatusNotFound, "not_found", "GET", path, p.plainTok, nil)
	c.fail(t, http.StatusNotFound, "not_found", "GET", path, other.Session, nil)
	c.fail(t, http.StatusNotFound, "not_found", "GET", path, other.AdminKey, nil)
	c.fail(t, http.StatusNotFound, "not_found", "GET", "/v1/keys/key_missing/usage", tn.Session, nil)

	// A rename leaves the limit; rotation copies it.
	var renamed limitedKey
	c.must(t, http.StatusOK, "PATCH", "/v1/keys/"+k.ID, p.devTok, map[string]any{"name": "limited, renamed"}, &renamed)
	wantLimit(t, "renamed", renamed.RateLimit, want)
	var rotated limitedKey
	c.must(t, http.StatusCreated, "POST", "/v1/keys/"+k.ID+"/rotate", p.devTok, map[string]any{"grace_period_seconds": 3600}, &rotated)
	wantLimit(t, "rotated", rotated.RateLimit, want)
	c.wantVerify(t, rotated.Secret, "VALID", rotated.ID)

	// PATCH rate_limit null lifts the limit at once.
	var lifted limitedKey
	r = c.must(t, http.StatusOK, "PATCH", "/v1/keys/"+k.ID, p.devTok, map[string]any{"rate_limit": nil}, &lifted)
	wantLimit(t, "lifted", lifted.RateLimit, nil)
	if raw := map[string]json.RawMessage{}; json.Unmarshal(r.body, &raw) != nil || string(raw["rate_limit"]) != "null" {
		t.Errorf("after PATCH null: rate_limit %s, want null", raw["rate_limit"])
	}
	for range 5 {
		c.wantVerify(t, k.Secret, "VALID", k.ID)
	}
	if ar := c.auth(t, k.Secret); ar.status != http.StatusOK || ar.header.Get("X-Keyward-Key-Id") != k.ID {
		t.Errorf("/v1/auth after the limit was lifted: %s", ar)
	}
	// The change is in the audit trail.
	events := c.events(t, p.devTok, url.Values{"key_id": {k.ID}, "action": {"key.updated"}})
	found := false
	for _, ev := range events {
		if rl, ok := ev.Details["rate_limit"].(map[string]any); ok && rl["to"] == nil && rl["from"] != nil {
			found = true
		}
	}
	if !found {
		t.Errorf("no key.updated event records the limit lifted: %+v", events)
	}
	c.waitUsage(t, p.devTok, k.ID, func(s map[string]int64) bool { return s["VALID"] >= 9 })
}

// TestUsageFlushedOnStop: with an hour between flushes, only the graceful
// stop writes the counts, and a new server reads them.
func TestUsageFlushedOnStop(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	s1 := startServer(t, dir, rec, serverOpts{UsageInterval: time.Hour})
	tn := s1.newTenant(t, "flushonstop")
	k := s1.c.createKey(t, tn.Session, map[string]any{"name": "k", "rate_limit": map[string]any{"limit": 2, "window_seconds": 60}})
	for range 2 {
		s1.c.wantVerify(t, k.Secret, "VALID", k.ID)
	}
	s1.c.wantVerify(t, k.Secret, "RATE_LIMITED", k.ID)
	s1.c.wantVerify(t, "kw_unknown", "NOT_FOUND", "")
	if sums := s1.c.keyUsage(t, tn.Session, k.ID, nil).sums(t); len(sums) != 0 {
		t.Errorf("counts written before any flush: %v", sums)
	}
	s1.close(t)

	s2 := startServer(t, dir, rec, serverOpts{UsageInterval: time.Hour})
	sums := s2.c.keyUsage(t, tn.Session, k.ID, nil).sums(t)
	if fmt.Sprint(sums) != fmt.Sprint(map[string]int64{"RATE_LIMITED": 1, "VALID": 2}) {
		t.Errorf("counts after a graceful stop and restart: %v, want VALID 2, RATE_LIMITED 1", sums)
	}
	if got := s2.c.getKey(t, tn.Session, k.ID); got.LastUsedAt == nil {
		t.Error("last_used_at not written on stop")
	}
}
