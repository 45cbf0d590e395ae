package postgres_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/postgres/pgtest"
)

// These tests run several "nodes" (DB handles with their own pools, and a
// Service each) on one real PostgreSQL database: what one node commits,
// the others must hear of, and limits must hold across them.

var (
	testPepper = []byte("keyward-postgres-test-pepper-0123456789")
	cheap      = keyward.PasswordParams{Memory: 64, Time: 1, Threads: 1}
)

const testPassword = "correct horse battery staple"

// node is one Keyward node's store and service.
type node struct {
	db  *postgres.DB
	svc *keyward.Service
}

// cluster is n nodes on one fresh database, with a tenant whose
// administrator (also a developer) may hold maxKeys keys.
type cluster struct {
	url      string
	nodes    []*node
	tenant   string
	admin    string // a session token, valid on every node
	adminKey string // the ID of the administrator's bootstrap key
}

func newCluster(t *testing.T, n, maxKeys int) *cluster {
	t.Helper()
	ctx := context.Background()
	c := &cluster{url: pgtest.NewDatabase(t)}
	h, err := keyward.NewHasher(testPepper)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		db, err := postgres.Open(ctx, c.url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		c.nodes = append(c.nodes, &node{db: db, svc: keyward.NewService(db, h, keyward.Options{PasswordParams: &cheap})})
	}
	pw := testPassword
	res, err := c.nodes[0].svc.Bootstrap(ctx, keyward.BootstrapInput{Tenant: "Acme", Email: "admin@acme.example", Password: &pw})
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	c.tenant, c.adminKey = res.TenantID, res.KeyID
	login, err := c.nodes[0].svc.Login(ctx, "admin@acme.example", testPassword, res.TenantID)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	c.admin = login.Token
	if _, err := c.nodes[0].svc.UpdateSettings(ctx, c.p(t, 0), keyward.SettingsPatch{MaxKeysPerUser: &maxKeys, MaxKeysPerServiceUser: &maxKeys}); err != nil {
		t.Fatalf("UpdateSettings: %v", err)
	}
	return c
}

// p is the administrator as node i sees it.
func (c *cluster) p(t testing.TB, i int) *keyward.Principal {
	t.Helper()
	p, err := c.nodes[i].svc.Authenticate(context.Background(), c.admin)
	if err != nil {
		t.Fatalf("Authenticate on node %d: %v", i, err)
	}
	return p
}

// recorder is a Listening that keeps what it is told, in order.
type recorder struct {
	mu      sync.Mutex
	changes []keyward.Change
	states  []string // "suspend", "resume"
	notify  chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) poke() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) Invalidate(ch keyward.Change) {
	r.mu.Lock()
	r.changes = append(r.changes, ch)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) Suspend() { r.state("suspend") }
func (r *recorder) Resume()  { r.state("resume") }

func (r *recorder) state(s string) {
	r.mu.Lock()
	r.states = append(r.states, s)
	r.mu.Unlock()
	r.poke()
}

// waitFor waits until cond holds over what was recorded, or fails.
func (r *recorder) waitFor(t *testing.T, what string, cond func(changes []keyward.Change, states []string) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.changes, r.states)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.notify:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out waiting for %s; changes %s, states %v", what, describe(r.changes), r.states)
		}
	}
}

// take removes and returns what was recorded so far.
func (r *recorder) take() []keyward.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.changes
	r.changes = nil
	return out
}

func describe(chs []keyward.Change) string {
	var b bytes.Buffer
	for _, ch := range chs {
		if ch.TenantID != "" {
			fmt.Fprintf(&b, "[tenant %s]", ch.TenantID)
			continue
		}
		b.WriteString("[keys")
		for _, h := range ch.KeyHashes {
			fmt.Fprintf(&b, " %s", hex.EncodeToString(h)[:8])
		}
		b.WriteString("]")
	}
	return b.String()
}

// hashes gathers every key digest of the changes, as hex.
func hashes(chs []keyward.Change) []string {
	var out []string
	for _, ch := range chs {
		for _, h := range ch.KeyHashes {
			out = append(out, hex.EncodeToString(h))
		}
	}
	slices.Sort(out)
	return out
}

// listen starts node i's listener into a new recorder, and waits until it
// listens.
func (c *cluster) listen(t *testing.T, i int, opts postgres.ListenOptions) *recorder {
	t.Helper()
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.nodes[i].db.Listen(ctx, r, opts)
	}()
	t.Cleanup(func() { cancel(); <-done })
	r.waitFor(t, "the listener to resume", func(_ []keyward.Change, st []string) bool {
		return len(st) >= 2 && st[0] == "suspend" && st[len(st)-1] == "resume"
	})
	return r
}

// TestChangesAreAnnounced checks which committed changes the other node
// hears of, by the digests of the keys concerned: every change that can
// alter a verification answer, once; none that cannot; none that rolled back.
func TestChangesAreAnnounced(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 2, 1000)
	r := c.listen(t, 1, postgres.ListenOptions{})
	a := c.nodes[0]
	p := c.p(t, 0)

	mk := func(name string, owner string) *keyward.Key {
		t.Helper()
		k, _, err := a.svc.CreateKey(ctx, p, keyward.KeyInput{Name: name, OwnerID: owner})
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		return k
	}
	hexOf := func(ks ...*keyward.Key) []string {
		var out []string
		for _, k := range ks {
			out = append(out, hex.EncodeToString(k.Hash))
		}
		slices.Sort(out)
		return out
	}
	// expect runs do and checks that exactly the digests of want are heard:
	// a marker change after it shows that nothing else was announced.
	marker := mk("marker", "")
	expect := func(what string, want []string, do func() error) {
		t.Helper()
		if err := do(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if _, err := a.svc.UpdateKey(ctx, p, marker.ID, keyward.KeyPatch{Name: ptr(what)}); err != nil {
			t.Fatalf("marker after %s: %v", what, err)
		}
		mh := hex.EncodeToString(marker.Hash)
		// The marker's own change: its digest alone. A bulk revocation of
		// every key announces the marker's digest too, among a hundred
		// others: the chunks after that one may not be heard yet.
		r.waitFor(t, "the marker after "+what, func(chs []keyward.Change, _ []string) bool {
			return slices.ContainsFunc(chs, func(ch keyward.Change) bool {
				return len(ch.KeyHashes) == 1 && hex.EncodeToString(ch.KeyHashes[0]) == mh
			})
		})
		got := hashes(r.take())
		got = slices.DeleteFunc(got, func(h string) bool { return h == mh })
		if want == nil {
			want = []string{}
		}
		if got == nil {
			got = []string{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: heard %d digests, want %d; the first differences: %v", what, len(got), len(want), firstDiffs(got, want))
		}
	}
	r.take() // the marker's creation is not a change: nothing to drop

	k1, k2 := mk("one", ""), mk("two", "")
	expect("a rename", hexOf(k1), func() error {
		_, err := a.svc.UpdateKey(ctx, p, k1.ID, keyward.KeyPatch{Name: ptr("one renamed")})
		return err
	})
	expect("a deactivation", hexOf(k1), func() error { _, err := a.svc.DeactivateKey(ctx, p, k1.ID); return err })
	expect("a reactivation", hexOf(k1), func() error { _, err := a.svc.ReactivateKey(ctx, p, k1.ID); return err })
	expect("a revocation", hexOf(k1), func() error { _, err := a.svc.RevokeKey(ctx, p, k1.ID, nil); return err })
	expect("last used moving", nil, func() error {
		return a.db.Update(ctx, func(tx keyward.Tx) error {
			return tx.TouchKeys(ctx, map[string]time.Time{k2.ID: time.Now()})
		})
	})
	expect("a rolled-back revocation", nil, func() error {
		errRollback := errors.New("roll back")
		err := a.db.Update(ctx, func(tx keyward.Tx) error {
			if _, err := tx.RevokeKeys(ctx, keyward.RevokeSpec{TenantID: c.tenant, At: time.Now()}); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			return fmt.Errorf("Update = %v, want the rollback", err)
		}
		return nil
	})
	expect("a deletion", hexOf(k2), func() error { return a.svc.DeleteKey(ctx, p, k2.ID) })

	// What a key shows of itself and its owner as the caller's own key.
	svcUser, err := a.svc.CreateUser(ctx, p, keyward.UserInput{Email: "svc@acme.example", Name: "Svc", Kind: keyward.KindSystem})
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := mk("svc one", svcUser.ID), mk("svc two", svcUser.ID)
	expect("a description", hexOf(v1), func() error {
		_, err := a.svc.UpdateKey(ctx, p, v1.ID, keyward.KeyPatch{Description: ptr("new words")})
		return err
	})
	expect("the owner's new name", hexOf(v1, v2), func() error {
		_, err := a.svc.UpdateUser(ctx, p, svcUser.ID, keyward.UserPatch{Name: ptr("Service")})
		return err
	})
	expect("the owner's new roles (nothing a key shows)", nil, func() error {
		_, err := a.svc.UpdateUser(ctx, p, svcUser.ID, keyward.UserPatch{Licensed: ptr(false)})
		return err
	})

	// A system user's keys go with it: the cascade is announced too.
	sys, err := a.svc.CreateUser(ctx, p, keyward.UserInput{Email: "ci@acme.example", Name: "CI", Kind: keyward.KindSystem})
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := mk("ci one", sys.ID), mk("ci two", sys.ID)
	expect("a user's deletion", hexOf(s1, s2), func() error { return a.svc.DeleteUser(ctx, p, sys.ID) })

	// A bulk revocation of more keys than one notification holds.
	var many []*keyward.Key
	for i := range 250 {
		many = append(many, mk(fmt.Sprintf("bulk %03d", i), ""))
	}
	// All: the administrator's own key too (the marker is set apart).
	own, err := a.svc.GetKey(ctx, p, c.adminKey)
	if err != nil {
		t.Fatal(err)
	}
	expect("a bulk revocation", hexOf(append(many, own, v1, v2)...), func() error {
		_, err := a.svc.BulkRevoke(ctx, p, keyward.BulkRevokeInput{All: true})
		return err
	})

	// Settings: the tenant is announced; a patch that changes nothing is not.
	off := false
	if _, err := a.svc.UpdateSettings(ctx, p, keyward.SettingsPatch{APIKeysEnabled: &off}); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "the tenant's change", func(chs []keyward.Change, _ []string) bool {
		return slices.ContainsFunc(chs, func(ch keyward.Change) bool { return ch.TenantID == c.tenant })
	})
}

// TestListenerRecoversFromALostConnection cuts the listening connection from
// the server's side (as a restart or a failover would): the listener
// suspends at once, reconnects by itself, resumes, and hears changes again.
func TestListenerRecoversFromALostConnection(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 2, 100)
	r := c.listen(t, 1, postgres.ListenOptions{Ping: 200 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	a := c.nodes[0]
	p := c.p(t, 0)
	k, _, err := a.svc.CreateKey(ctx, p, keyward.KeyInput{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		var killed int
		if err := a.db.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database()`, postgres.ListenerName).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed != 1 {
			t.Fatalf("round %d: terminated %d listening connections, want 1", round, killed)
		}
		r.waitFor(t, "suspend, then resume", func(_ []keyward.Change, st []string) bool {
			n := len(st)
			return n >= 2*(round+2) && st[n-2] == "suspend" && st[n-1] == "resume"
		})
		r.take()
		name := fmt.Sprintf("after cut %d", round)
		if _, err := a.svc.UpdateKey(ctx, p, k.ID, keyward.KeyPatch{Name: &name}); err != nil {
			t.Fatal(err)
		}
		want := hex.EncodeToString(k.Hash)
		r.waitFor(t, "the change after the cut", func(chs []keyward.Change, _ []string) bool {
			return slices.Contains(hashes(chs), want)
		})
	}
}

// TestCreatesAcrossNodesNeverExceedTheMaximum creates keys for one owner
// from three nodes at once: exactly up to the maximum succeed (the owner,
// the administrator, holds its bootstrap key already).
func TestCreatesAcrossNodesNeverExceedTheMaximum(t *testing.T) {
	ctx := context.Background()
	const maxKeys, tries = 5, 30
	c := newCluster(t, 3, maxKeys)
	ps := []*keyward.Principal{c.p(t, 0), c.p(t, 1), c.p(t, 2)}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, full int
		other    []error
	)
	start := make(chan struct{})
	for i := range tries {
		wg.Go(func() {
			<-start
			n := i % len(c.nodes)
			_, _, err := c.nodes[n].svc.CreateKey(ctx, ps[n], keyward.KeyInput{Name: fmt.Sprintf("k%d", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case keyward.ErrorCode(err) == keyward.EKeyLimitReached:
				full++
			default:
				other = append(other, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != maxKeys-1 || full != tries-(maxKeys-1) || len(other) > 0 {
		t.Fatalf("%d created, %d refused at the limit, other errors %v; want %d and %d", ok, full, other, maxKeys-1, tries-(maxKeys-1))
	}
}

// TestRevocationsAcrossNodesRecordEachKeyOnce races, on three nodes, a
// revocation of every key, bulk revocations by IDs in opposite orders, and
// single revocations of every key: each key ends revoked with exactly one
// key.revoked event, and every refusal is the contract's not_revocable.
func TestRevocationsAcrossNodesRecordEachKeyOnce(t *testing.T) {
	ctx := context.Background()
	const n = 60
	c := newCluster(t, 3, 1000)
	p0 := c.p(t, 0)
	var ids []string
	for i := range n {
		k, _, err := c.nodes[0].svc.CreateKey(ctx, p0, keyward.KeyInput{Name: fmt.Sprintf("k%02d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	reversed := slices.Clone(ids)
	slices.Reverse(reversed)
	ps := []*keyward.Principal{p0, c.p(t, 1), c.p(t, 2)}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		revoked int // keys revoked, as the callers were told
		bad     []string
	)
	note := func(k int, err error) {
		mu.Lock()
		defer mu.Unlock()
		revoked += k
		if err != nil {
			bad = append(bad, err.Error())
		}
	}
	start := make(chan struct{})
	wg.Go(func() {
		<-start
		res, err := c.nodes[0].svc.BulkRevoke(ctx, ps[0], keyward.BulkRevokeInput{All: true})
		if err != nil {
			note(0, err)
			return
		}
		note(res.Revoked, nil)
	})
	for i, order := range [][]string{ids, reversed} {
		wg.Go(func() {
			<-start
			res, err := c.nodes[1+i].svc.BulkRevoke(ctx, ps[1+i], keyward.BulkRevokeInput{IDs: order})
			if err != nil {
				note(0, err)
				return
			}
			for _, f := range res.Failed {
				if f.Code != keyward.ENotRevocable {
					note(0, fmt.Errorf("bulk by ids: %s failed with %s", f.ID, f.Code))
				}
			}
			note(res.Revoked, nil)
		})
	}
	for i, id := range ids {
		wg.Go(func() {
			<-start
			nd := i % 3
			_, err := c.nodes[nd].svc.RevokeKey(ctx, ps[nd], id, nil)
			if err != nil && keyward.ErrorCode(err) != keyward.ENotRevocable {
				note(0, fmt.Errorf("revoke %s: %w", id, err))
				return
			}
			if err == nil {
				note(1, nil)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("unexpected failures: %v", bad)
	}
	// One per key, and the administrator's own key, which only the
	// revocation of all keys takes.
	if revoked != n+1 {
		t.Errorf("callers were told of %d revocations, want %d (one per key)", revoked, n+1)
	}
	events := map[string]int{}
	var token string
	for {
		page, err := c.nodes[0].svc.ListEvents(ctx, p0, keyward.EventQuery{Action: keyward.ActionKeyRevoked, PageSize: 200, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			events[e.Target.ID]++
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	for _, id := range ids {
		if events[id] != 1 {
			t.Errorf("key %s has %d key.revoked events, want 1", id, events[id])
		}
		k, err := c.nodes[2].svc.GetKey(ctx, ps[2], id)
		if err != nil || k.Status(time.Now()) != keyward.StatusRevoked {
			t.Errorf("key %s after the race: %v, %v; want revoked", id, k, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// firstDiffs names a few digests heard but not wanted (+) or wanted but not
// heard (-), shortened.
func firstDiffs(got, want []string) []string {
	var out []string
	for _, g := range got {
		if !slices.Contains(want, g) && len(out) < 5 {
			out = append(out, "+"+g[:8])
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) && len(out) < 10 {
			out = append(out, "-"+w[:8])
		}
	}
	return out
}
