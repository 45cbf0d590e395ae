package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/postgres/pgtest"
	"github.com/keyward/keyward/ratelimit/redistest"
)

// startNode starts one node of several on the PostgreSQL database dsn, as
// startServer does, with redisURL as --redis ("" for none).
func startNode(tb testing.TB, dir string, rec *recorder, dsn, redisURL string) *server {
	tb.Helper()
	return startServer(tb, dir, rec, serverOpts{DB: dsn, Redis: redisURL})
}

// verifyAlternately verifies secret n times, in turn on each node, and
// returns the codes in order.
func verifyAlternately(tb testing.TB, secret string, n int, nodes ...*server) []string {
	tb.Helper()
	codes := make([]string, n)
	for i := range n {
		codes[i] = nodes[i%len(nodes)].c.verify(tb, secret).Code
	}
	return codes
}

// TestRedisRateLimitAcrossNodes: two nodes on one PostgreSQL with --redis
// share a key's rate limit: a key of 5 uses a minute, verified alternately on
// both, is VALID exactly 5 times. Two nodes without --redis each limit on
// their own, as the docs say: the same key gets 5 uses on each.
func TestRedisRateLimitAcrossNodes(t *testing.T) {
	redisURL := redistest.URL(t)
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	rec := &recorder{}
	a := startNode(t, dir, rec, dsn, redisURL)
	b := startNode(t, dir, rec, dsn, redisURL)

	tn := a.newTenant(t, "ratelimits")
	newKey := func(name string) apiKey {
		return a.c.createKey(t, tn.Session, map[string]any{"name": name,
			"rate_limit": map[string]any{"limit": 5, "window_seconds": 60}})
	}

	shared := newKey("shared limit")
	codes := verifyAlternately(t, shared.Secret, 10, a, b)
	want := []string{"VALID", "VALID", "VALID", "VALID", "VALID",
		"RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED"}
	if strings.Join(codes, " ") != strings.Join(want, " ") {
		t.Fatalf("with --redis, verifying alternately on two nodes: %v, want %v", codes, want)
	}
	for _, n := range []*server{a, b} {
		if f := n.m.limiter.Fallbacks(); f != 0 {
			t.Fatalf("a node fell back to local limits %d times", f)
		}
	}

	// Without --redis each node has a limit of its own.
	c := startNode(t, dir, rec, dsn, "")
	d := startNode(t, dir, rec, dsn, "")
	local := newKey("node-local limit")
	codes = verifyAlternately(t, local.Secret, 12, c, d)
	valid := 0
	for _, code := range codes {
		if code == "VALID" {
			valid++
		}
	}
	if valid != 10 || codes[10] != "RATE_LIMITED" || codes[11] != "RATE_LIMITED" {
		t.Fatalf("without --redis, on two nodes: %v, want 5 VALID on each then RATE_LIMITED", codes)
	}
}

// TestRedisUnreachableAtStart: a node given a --redis that does not answer
// does not start.
func TestRedisUnreachableAtStart(t *testing.T) {
	dir := t.TempDir()
	m := &Main{Addr: "127.0.0.1:0", DB: "sqlite:" + filepath.Join(dir, "k.db"), Redis: "redis://127.0.0.1:1/0"}
	err := m.Run(context.Background())
	if err == nil {
		m.Close()
		t.Fatal("Main.Run started with an unreachable Redis")
	}
	if !strings.Contains(err.Error(), "--redis") {
		t.Errorf("error %q does not name --redis", err)
	}
}
