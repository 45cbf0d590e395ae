package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testclock"
	"github.com/keyward/keyward/postgres/pgtest"
)

// TestLeaderOnPostgres: of two nodes on one PostgreSQL, exactly one runs the
// expiry sweep; each expired key gets exactly one key.expired event; when the
// leader stops, the other node takes over by itself.
func TestLeaderOnPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	clock := testclock.New(time.Now().UTC().Truncate(time.Second)) // several servers share it
	dir := t.TempDir()
	rec := &recorder{}
	opts := serverOpts{DB: dsn, SweepInterval: 20 * time.Millisecond, Now: clock.Now}
	a := startServer(t, dir, rec, opts)
	b := startServer(t, dir, rec, opts) // same pepper file, same database

	waitFor(t, "one leader", func() bool { return a.m.Leading() != b.m.Leading() })
	for i := 0; i < 20; i++ { // it stays one
		if a.m.Leading() == b.m.Leading() {
			t.Fatalf("leading: a=%v b=%v", a.m.Leading(), b.m.Leading())
		}
		time.Sleep(5 * time.Millisecond)
	}

	tn := a.newTenant(t, "leaders")
	var ids []string
	for i := 0; i < 4; i++ { // the bootstrap key is the fifth of the maximum
		k := a.c.createKey(t, tn.Session, map[string]any{"name": "short-lived",
			"expires_at": clock.Now().Add(time.Hour).Format(time.RFC3339)})
		ids = append(ids, k.ID)
	}
	clock.Advance(2 * time.Hour)
	countExpired := func() int {
		n := 0
		for _, e := range a.c.events(t, tn.Session, url.Values{"action": {"key.expired"}}) {
			for _, id := range ids {
				if e.Target.ID == id {
					n++
				}
			}
		}
		return n
	}
	waitFor(t, "key.expired events", func() bool { return countExpired() >= len(ids) })
	time.Sleep(100 * time.Millisecond) // several more sweep rounds on both nodes
	if n := countExpired(); n != len(ids) {
		t.Fatalf("%d key.expired events for %d keys: the sweep ran on both nodes", n, len(ids))
	}

	leaderSrv, other := a, b
	if b.m.Leading() {
		leaderSrv, other = b, a
	}
	leaderSrv.close(t)
	waitFor(t, "the other node to take over", other.m.Leading)
	if !strings.Contains(other.log.String(), "leading background work") {
		t.Error("the new leader did not log that it leads")
	}
}

// waitFor polls cond every 10 ms for up to 10 s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
