package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/postgres/pgtest"
)

// Several real `keyward serve` processes on one PostgreSQL database, as
// docs/deploy.md sets them up: a change made on one node must reach the
// verification caches of the others, and a node that loses its listening
// connection must never answer from a stale memory.

// pgCluster is n keyward processes on one fresh database, with a tenant
// whose administrator may hold many keys.
type pgCluster struct {
	dsn    string
	nodes  []*proc
	tenant *tenant
	c      []*client // one per node, checked against the OpenAPI document
	fast   *http.Client
}

func startPGCluster(t *testing.T, n int) *pgCluster {
	t.Helper()
	bin := mustBinary(t)
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	pepper := filepath.Join(dir, "pepper")
	if err := os.WriteFile(pepper, []byte(strings.Repeat("cluster-pepper-", 4)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The schema first, as a rolling upgrade would: keyward migrate.
	if code, _, stderr := runCmd(t, "", "migrate", "--db", dsn); code != 0 {
		t.Fatalf("keyward migrate: exit %d: %s", code, stderr)
	}
	pc := &pgCluster{dsn: dsn, fast: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	for range n {
		// The failure limit is out of the tests' way: they verify revoked
		// keys in tight loops from one address.
		p := startServe(t, bin, dsn, "--pepper-file", pepper, "--usage-interval", "200ms",
			"--verify-failure-limit", "100000000")
		p.waitLog(t, "cache invalidation: listening for changes", 30*time.Second)
		pc.nodes = append(pc.nodes, p)
		pc.c = append(pc.c, newClient(p.url, &recorder{}))
	}
	out := mustBootstrap(t, nil, dsn, "Acme", "admin@acme.example", "correct horse acme", "--pepper-file", pepper)
	tn := &tenant{ID: out.TenantID, AdminID: out.UserID, AdminKey: out.Secret, AdminKeyID: out.KeyID}
	tn.Session = pc.c[0].login(t, "admin@acme.example", "correct horse acme").Token
	pc.tenant = tn
	pc.c[0].settings(t, tn.Session, map[string]any{"max_keys_per_user": 1000})
	return pc
}

// verifyCode asks node i about secret, without the OpenAPI check, for
// tight loops.
func (pc *pgCluster) verifyCode(i int, secret string) (string, error) {
	body, _ := json.Marshal(map[string]string{"key": secret})
	resp, err := pc.fast.Post(pc.nodes[i].url+"/v1/keys/verify", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		Code string `json:"code"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("verify on node %d: %d %s", i, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", err
	}
	return v.Code, nil
}

// metric reads one series of node i's /metrics (labels as Prometheus
// writes them, in order).
func (pc *pgCluster) metric(t *testing.T, i int, name string) float64 {
	t.Helper()
	resp, err := pc.fast.Get(pc.nodes[i].url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %q: %v", name, v, err)
			}
			return f
		}
	}
	if strings.Contains(name, "{") {
		return 0 // a labelled series appears with its first count
	}
	t.Fatalf("node %d has no metric %s", i, name)
	return 0
}

// keys creates n keys on node 0 and warms every other node's cache with
// them (verified twice, so the second answer is from memory).
func (pc *pgCluster) keys(t *testing.T, n int) []apiKey {
	t.Helper()
	var ks []apiKey
	for i := range n {
		ks = append(ks, pc.c[0].createKey(t, pc.tenant.Session, map[string]any{"name": fmt.Sprintf("svc-%03d", i)}))
	}
	for node := range pc.nodes {
		for _, k := range ks {
			for range 2 {
				if code, err := pc.verifyCode(node, k.Secret); err != nil || code != "VALID" {
					t.Fatalf("warming node %d with %s: %s, %v", node, k.ID, code, err)
				}
			}
		}
	}
	return ks
}

// refuseWithin bounds how long a node may go on accepting a revoked key in
// the tests. The targets (p99 ≤ 100 ms, worst ≤ 1 s) are measured on a quiet
// machine and quoted in docs/performance.md; a loaded test machine (every
// package's tests at once, on two cores) can stall a process for longer than
// that. Five seconds is far below the cache's own one-minute maximum age, so
// a node that did not hear of a change still fails here.
const refuseWithin = 5 * time.Second

// waitRefused polls node i until it refuses secret; it returns how long after
// since that was, or fails after refuseWithin.
func (pc *pgCluster) waitRefused(t *testing.T, i int, secret string, since time.Time) time.Duration {
	t.Helper()
	for {
		code, err := pc.verifyCode(i, secret)
		if err != nil {
			t.Fatal(err)
		}
		if code != "VALID" {
			if code != "REVOKED" {
				t.Fatalf("node %d answered %s for a revoked key", i, code)
			}
			return time.Since(since)
		}
		if d := time.Since(since); d > refuseWithin {
			t.Fatalf("node %d still accepts a key revoked %v ago", i, d)
		}
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// TestThreeNodesPropagateRevocations revokes keys on each of three nodes in
// turn and measures when each other node first refuses them, from the moment
// the revocation's answer arrived. Every node must refuse within
// refuseWithin; with KEYWARD_PROPAGATION_OUT set (a file for the figures, as
// JSON) the test is the measurement of docs/performance.md and also requires
// the targets: p99 at most 100 ms, the worst within a second.
func TestThreeNodesPropagateRevocations(t *testing.T) {
	pc := startPGCluster(t, 3)
	const n = 120
	ks := pc.keys(t, n)
	hitsBefore := pc.metric(t, 1, "keyward_verify_cache_hits_total")
	var all []time.Duration
	perNode := make([][]time.Duration, len(pc.nodes))
	for i, k := range ks {
		from := i % len(pc.nodes)
		pc.c[from].keyAction(t, pc.tenant.Session, k.ID, "revoke", map[string]any{"reason": "propagation test"})
		// From the moment the caller is told the key is revoked (the
		// change committed just before).
		sent := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		for other := range pc.nodes {
			if other == from {
				continue
			}
			wg.Go(func() {
				d := pc.waitRefused(t, other, k.Secret, sent)
				mu.Lock()
				all = append(all, d)
				perNode[other] = append(perNode[other], d)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	// The answers came from memory before the revocations: the caches were
	// in use, so the refusals show invalidation, not a cache that was off.
	if hits := pc.metric(t, 1, "keyward_verify_cache_hits_total"); hits <= hitsBefore-1 || hitsBefore < n {
		t.Errorf("node 1 cache hits: %v before the revocations (want at least %d from warming), %v after", hitsBefore, n, hits)
	}
	p50, p99, worst := quantile(all, 0.50), quantile(all, 0.99), slices.Max(all)
	t.Logf("propagation over %d revocations (%d node answers): p50 %v, p99 %v, worst %v", n, len(all), p50, p99, worst)
	for i, ds := range perNode {
		if len(ds) > 0 {
			t.Logf("  node %d: p50 %v, p99 %v, worst %v over %d", i, quantile(ds, 0.5), quantile(ds, 0.99), slices.Max(ds), len(ds))
		}
	}
	if out := os.Getenv("KEYWARD_PROPAGATION_OUT"); out != "" {
		b, _ := json.Marshal(map[string]any{"revocations": n, "answers": len(all),
			"p50_ms": p50.Seconds() * 1e3, "p99_ms": p99.Seconds() * 1e3, "worst_ms": worst.Seconds() * 1e3})
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Measuring for docs/performance.md (on a quiet machine): the targets.
	if os.Getenv("KEYWARD_PROPAGATION_OUT") != "" && (p99 > 100*time.Millisecond || worst > time.Second) {
		t.Errorf("propagation p99 %v (want ≤ 100ms), worst %v (want ≤ 1s)", p99, worst)
	}
}

// TestNodesFailClosedWhenTheirListenerIsCut cuts the listening connection
// of every node from the server's side, again and again, while verifications
// run on every node and revocations are made on one: a revoked key is never
// accepted once the revocation has had its second to propagate, each node
// recovers by itself (listening again, its cache back in use), and every
// node stays ready throughout. ("Its second": refuseWithin on a loaded test
// machine.)
func TestNodesFailClosedWhenTheirListenerIsCut(t *testing.T) {
	pc := startPGCluster(t, 3)
	const rounds = 4
	ks := pc.keys(t, rounds*2)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pc.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	// revokedAt holds, per key index, when its revocation was sent (0: live).
	revokedAt := make([]atomic.Int64, len(ks))
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		verified atomic.Int64
		bad      atomic.Value // string: the first violation
	)
	for node := range pc.nodes {
		refused := make([]bool, len(ks)) // this node has refused key k: it must never accept it again
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				k := i % len(ks)
				start := time.Now()
				code, err := pc.verifyCode(node, ks[k].Secret)
				if err != nil {
					bad.CompareAndSwap(nil, err.Error())
					return
				}
				verified.Add(1)
				if code != "VALID" {
					refused[k] = true
				} else if refused[k] {
					bad.CompareAndSwap(nil, fmt.Sprintf("node %d accepted key %s again after refusing it", node, ks[k].ID))
				}
				if at := revokedAt[k].Load(); at != 0 && code == "VALID" && start.Sub(time.Unix(0, at)) > refuseWithin {
					bad.CompareAndSwap(nil, fmt.Sprintf("node %d accepted key %s, revoked %v before the verification began",
						node, ks[k].ID, start.Sub(time.Unix(0, at))))
				}
			}
		})
	}

	for round := range rounds {
		// Cut every node's listener, and revoke a key at once, while the
		// nodes are finding out.
		var cut int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND datname = current_database()`, postgres.ListenerName).Scan(&cut); err != nil {
			t.Fatal(err)
		}
		if cut != len(pc.nodes) {
			t.Fatalf("round %d: cut %d listening connections, want %d", round, cut, len(pc.nodes))
		}
		k := 2 * round
		revokedAt[k].Store(time.Now().UnixNano())
		pc.c[0].keyAction(t, pc.tenant.Session, ks[k].ID, "revoke", nil)
		for node := range pc.nodes {
			pc.waitRefused(t, node, ks[k].Secret, time.Unix(0, revokedAt[k].Load()))
			if r := pc.c[node].do(t, "GET", "/readyz", "", nil); r.status != http.StatusOK {
				t.Errorf("round %d: node %d not ready while reconnecting: %s", round, node, r)
			}
		}
		// Every node recovers by itself: listening again, cache in use, and
		// a revocation made now reaches it through the listener.
		for node := range pc.nodes {
			waitFor(t, fmt.Sprintf("node %d to resume its cache", node), func() bool {
				return pc.metric(t, node, "keyward_verify_cache_suspended") == 0
			})
		}
		k++
		for node := range pc.nodes {
			for range 2 {
				if code, err := pc.verifyCode(node, ks[k].Secret); err != nil || code != "VALID" {
					t.Fatalf("round %d: node %d: %s, %v", round, node, code, err)
				}
			}
		}
		hits := pc.metric(t, 2, "keyward_verify_cache_hits_total")
		if code, _ := pc.verifyCode(2, ks[k].Secret); code != "VALID" {
			t.Fatalf("round %d: node 2 refused a live key: %s", round, code)
		}
		if after := pc.metric(t, 2, "keyward_verify_cache_hits_total"); after <= hits {
			t.Errorf("round %d: node 2 did not answer from memory after recovering (hits %v → %v)", round, hits, after)
		}
		revokedAt[k].Store(time.Now().UnixNano())
		pc.c[1].keyAction(t, pc.tenant.Session, ks[k].ID, "revoke", nil)
		for node := range pc.nodes {
			pc.waitRefused(t, node, ks[k].Secret, time.Unix(0, revokedAt[k].Load()))
		}
	}
	// Let the verifiers run past the last revocation's allowance.
	time.Sleep(refuseWithin + 200*time.Millisecond) // a span of checked load, not a wait for state
	stop.Store(true)
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Fatal(v)
	}
	if verified.Load() < 100 {
		t.Errorf("only %d verifications ran alongside the cuts", verified.Load())
	}
	for i, p := range pc.nodes {
		if !strings.Contains(p.log(), "listening connection lost") {
			t.Errorf("node %d never logged the lost connection", i)
		}
	}
}

// deploySnippet is the nginx block of docs/deploy.md, right after the
// "<!-- tested: nginx-cluster -->" line.
func deploySnippet(t *testing.T) string {
	t.Helper()
	const doc = "../../docs/deploy.md"
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- tested: nginx-cluster -->\n```nginx\n")
	if !ok {
		t.Fatalf("%s: no ```nginx block right after <!-- tested: nginx-cluster -->", doc)
	}
	block, _, ok := strings.Cut(rest, "\n```\n")
	if !ok {
		t.Fatalf("%s: the tested nginx block does not end", doc)
	}
	return block + "\n"
}

// TestDeployBehindNginx runs docs/deploy.md's set-up: three nodes on one
// PostgreSQL behind the documented nginx block. A client that only knows
// nginx's address creates, verifies and revokes keys; the requests spread
// over every node; a revocation holds on whichever node answers next; and
// when a node stops, nginx sends its share to the others without an error.
func TestDeployBehindNginx(t *testing.T) {
	bin := nginxBinary(t)
	pc := startPGCluster(t, 3)
	conf := deploySnippet(t)
	port := freePort(t)
	for i, sub := range [][2]string{
		{"server 127.0.0.1:8081 ", "server " + strings.TrimPrefix(pc.nodes[0].url, "http://") + " "},
		{"server 127.0.0.1:8082 ", "server " + strings.TrimPrefix(pc.nodes[1].url, "http://") + " "},
		{"server 127.0.0.1:8083 ", "server " + strings.TrimPrefix(pc.nodes[2].url, "http://") + " "},
		{"listen 8080;", fmt.Sprintf("listen 127.0.0.1:%d;", port)},
	} {
		if n := strings.Count(conf, sub[0]); n != 1 {
			t.Fatalf("docs/deploy.md: the nginx block holds %q %d times, want once (substitution %d)", sub[0], n, i)
		}
		conf = strings.Replace(conf, sub[0], sub[1], 1)
	}
	lb, err := runNginx(t, bin, t.TempDir(), conf, port, func(resp *http.Response) error {
		if resp.StatusCode == 200 {
			return nil
		}
		return fmt.Errorf("GET /healthz through nginx: %s", resp.Status)
	})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(lb.url, &recorder{})
	session := c.login(t, "admin@acme.example", "correct horse acme").Token

	served := func() []float64 {
		var out []float64
		for i := range pc.nodes {
			out = append(out, pc.metric(t, i, `keyward_http_requests_total{route="POST /v1/keys/verify",status="200"}`))
		}
		return out
	}
	var keys []apiKey
	for i := range 6 {
		keys = append(keys, c.createKey(t, session, map[string]any{"name": fmt.Sprintf("lb-%d", i)}))
	}
	before := served()
	for range 10 {
		for _, k := range keys {
			c.wantVerify(t, k.Secret, "VALID", k.ID)
		}
	}
	after := served()
	for i := range pc.nodes {
		if after[i] <= before[i] {
			t.Errorf("node %d answered no verification through nginx (%v → %v)", i, before[i], after[i])
		}
	}
	// A revocation through nginx holds on every node, whichever answers.
	sent := time.Now()
	c.keyAction(t, session, keys[0].ID, "revoke", nil)
	for node := range pc.nodes {
		pc.waitRefused(t, node, keys[0].Secret, sent) // within its second to propagate
	}
	for range 30 {
		c.wantVerify(t, keys[0].Secret, "REVOKED", keys[0].ID)
	}
	for node := range pc.nodes {
		if code, err := pc.verifyCode(node, keys[0].Secret); err != nil || code != "REVOKED" {
			t.Errorf("node %d: %s, %v; want REVOKED", node, code, err)
		}
	}
	// A node stops (SIGTERM, as in a rolling upgrade): nginx sends its
	// share to the others, and every request still succeeds.
	pc.nodes[2].cmd.Process.Signal(os.Interrupt)
	pc.nodes[2].wait(t)
	for range 5 {
		for _, k := range keys[1:] {
			c.wantVerify(t, k.Secret, "VALID", k.ID)
		}
		var me struct {
			User struct {
				Email string `json:"email"`
			} `json:"user"`
		}
		c.must(t, http.StatusOK, "GET", "/v1/me", session, nil, &me)
		if me.User.Email != "admin@acme.example" {
			t.Fatalf("GET /v1/me through nginx after a node stopped: %+v", me)
		}
	}
}

// pgProxy forwards TCP connections to PostgreSQL, and can cut them all and
// refuse new ones: a database that became unreachable, as far as the node
// behind it can tell.
type pgProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func startPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			if !down {
				p.conns[c] = true
			}
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			go p.pipe(c)
		}
	}()
	return p
}

func (p *pgProxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[u] = true
	p.mu.Unlock()
	go func() { io.Copy(u, c); u.Close(); c.Close() }()
	io.Copy(c, u)
	c.Close()
	u.Close()
}

// cut closes every forwarded connection and refuses new ones until restore.
func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *pgProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestNodeRidesOutADatabaseOutage cuts a node off from PostgreSQL and lets it
// back: while cut off, /readyz answers 503 and no verification is answered
// from memory (the listener is gone: the cache is suspended); once the
// database answers again, the node is ready, listens, caches and serves
// again by itself, without a restart.
func TestNodeRidesOutADatabaseOutage(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startPGProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	rec := &recorder{}
	s := startServer(t, t.TempDir(), rec, serverOpts{DB: u.String()})
	waitFor(t, "the listener to start", func() bool { return !s.m.Cache.Suspended() })
	tn := s.newTenant(t, "Acme")
	k := s.c.createKey(t, tn.Session, map[string]any{"name": "outage"})
	s.c.wantVerify(t, k.Secret, "VALID", k.ID)
	ready := func() int { return s.c.do(t, "GET", "/readyz", "", nil).status }
	if st := ready(); st != http.StatusOK {
		t.Fatalf("/readyz before the outage: %d", st)
	}

	proxy.cut()
	waitFor(t, "/readyz to fail", func() bool { return ready() == http.StatusServiceUnavailable })
	waitFor(t, "the cache to be suspended", func() bool { return s.m.Cache.Suspended() })
	// Nothing from memory: without the database, a verification fails
	// rather than answer from a cache that may have missed a revocation.
	if r := s.c.do(t, "POST", "/v1/keys/verify", "", map[string]string{"key": k.Secret}); r.status == http.StatusOK {
		t.Fatalf("verification answered while the database is unreachable: %s", r)
	}

	proxy.restore()
	waitFor(t, "/readyz to pass again", func() bool { return ready() == http.StatusOK })
	waitFor(t, "the cache to resume", func() bool { return !s.m.Cache.Suspended() })
	s.c.wantVerify(t, k.Secret, "VALID", k.ID)
	s.c.keyAction(t, tn.Session, k.ID, "revoke", nil)
	s.c.wantVerify(t, k.Secret, "REVOKED", k.ID)
	if !strings.Contains(s.log.String(), "listening connection lost") {
		t.Errorf("the node did not log the lost listening connection")
	}
}
