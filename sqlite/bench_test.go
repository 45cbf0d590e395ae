package sqlite

// Benchmarks of the store at scale: listing, searching, counting, lookups
// by digest and bulk revocation over a database of many keys.
//
// The database holds KEYWARD_BENCH_KEYS keys (default 20,000, so that a plain
// "go test -bench ." stays quick) in the tenant "Bench", plus a tenth as many
// in the tenant "Other". It is built through the store API once and kept in
// os.TempDir(), named by the key count, a digest of the embedded migrations
// and benchFixtureVersion, so that later runs open it at once. The figures of
// docs/performance-store.md are taken with KEYWARD_BENCH_KEYS=1000000:
//
//	KEYWARD_BENCH_KEYS=1000000 go test ./sqlite/ -run '^$' -bench . -benchtime 200x -count 5
//
// Plain "go test" runs no benchmark and builds nothing.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/benchdata"
	"github.com/keyward/keyward/internal/testfile"
)

// benchFixtureVersion names the fixture's shape; change it whenever
// buildBenchDB changes, so that cached files are rebuilt.
const benchFixtureVersion = 1

// benchNow is the fixture's clock: statuses are evaluated at this time.
var benchNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

var benchScopes = [][]string{{}, {}, {"invoices:read"}, {"invoices:read", "invoices:write"},
	{"orders:read"}, {"metrics:write"}, {"catalog:read", "catalog:write", "media:read"}}

// benchKeyCount is the number of keys of the tenant "Bench":
// KEYWARD_BENCH_KEYS, default 20,000.
func benchKeyCount(tb testing.TB) int { return benchCount(tb, "KEYWARD_BENCH_KEYS", "keys", 20_000) }

// benchCount is the number of things a fixture holds: the environment
// variable env when set (at least 100), else def.
func benchCount(tb testing.TB, env, things string, def int) int {
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 {
		tb.Fatalf("%s=%q: want a number of %s, at least 100", env, s, things)
	}
	return n
}

// benchKeyHash is the digest of the fixture's key i of tenant t.
func benchKeyHash(t, i int) []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t))
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	h := sha256.Sum256(b[:])
	return h[:]
}

// benchFixture is the cached database and what the benchmarks need of it.
type benchFixture struct {
	path         string
	n            int // keys of Bench; Other has n/10
	tenant       *keyward.Tenant
	other        *keyward.Tenant
	admin        *keyward.User // tenant admin of Bench
	otherAdmin   *keyward.User // tenant admin of Other
	owner        string        // a person of Bench with keys
	systemKeys   int           // live keys of Bench's system users
	otherKeys    int           // keys of Other, all live
	buildSeconds float64       // 0 when the file was cached
}

var (
	benchMu       sync.Mutex
	benchFixtures = map[int]*benchFixture{}
)

// migrationsDigest names the schema the embedded migrations build.
func migrationsDigest(tb testing.TB) string {
	h := sha256.New()
	err := fs.WalkDir(migrationFiles, "migrations", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := migrationFiles.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// benchDB returns the fixture of benchKeyCount keys, building and caching the
// database file on first use.
func benchDB(b *testing.B) *benchFixture {
	b.Helper()
	n := benchKeyCount(b)
	benchMu.Lock()
	defer benchMu.Unlock()
	if f := benchFixtures[n]; f != nil {
		return f
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("keyward-bench-n%d-m%s-f%d.db", n, migrationsDigest(b), benchFixtureVersion))
	f := &benchFixture{path: path, n: n}
	if _, err := os.Stat(path); err != nil {
		start := time.Now()
		if older := olderBenchDB(n); older != "" {
			// The same fixture under older migrations: a migrated copy is
			// what a user's upgraded database would be, and much quicker.
			migrateBenchDB(b, older, path)
			b.Logf("migrated %s to %s in %.1fs", older, path, time.Since(start).Seconds())
		} else {
			buildBenchDB(b, path, n)
			f.buildSeconds = time.Since(start).Seconds()
			b.Logf("built %s (%d + %d keys) in %.1fs", path, n, n/10, f.buildSeconds)
		}
	}
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	err = db.View(ctx, func(tx keyward.Tx) error {
		var err error
		if f.tenant, err = tx.TenantByName(ctx, "Bench"); err != nil {
			return err
		}
		if f.other, err = tx.TenantByName(ctx, "Other"); err != nil {
			return err
		}
		for _, a := range []struct {
			u     **keyward.User
			email string
		}{{&f.admin, "admin@bench.example"}, {&f.otherAdmin, "admin@other.example"}} {
			users, err := tx.UsersByEmail(ctx, a.email)
			if err != nil || len(users) != 1 {
				return fmt.Errorf("admin %s: %v, %d users", a.email, err, len(users))
			}
			*a.u = users[0]
		}
		return nil
	})
	if err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	t := db.reader
	if err := t.QueryRow(`SELECT count(*) FROM keys k JOIN users u ON u.id = k.owner_id
		WHERE k.tenant_id = ? AND u.kind = 'system' AND k.revoked_at IS NULL`, f.tenant.ID).Scan(&f.systemKeys); err != nil {
		b.Fatal(err)
	}
	if err := t.QueryRow(`SELECT owner_id FROM keys WHERE hash = ?`, benchKeyHash(0, 1)).Scan(&f.owner); err != nil {
		b.Fatal(err)
	}
	if err := t.QueryRow(`SELECT count(*) FROM keys WHERE tenant_id = ? AND revoked_at IS NULL`,
		f.other.ID).Scan(&f.otherKeys); err != nil {
		b.Fatal(err)
	}
	benchFixtures[n] = f
	return f
}

// olderBenchDB finds a complete fixture of n keys and this fixture version
// built under other migrations, if any.
func olderBenchDB(n int) string {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("keyward-bench-n%d-m*-f%d.db", n, benchFixtureVersion)))
	if len(matches) == 0 {
		return ""
	}
	sort.Strings(matches)
	return matches[len(matches)-1]
}

// migrateBenchDB copies the fixture at from, opens the copy (which applies
// the migrations it lacks) and moves it to path once complete.
func migrateBenchDB(tb testing.TB, from, path string) {
	tb.Helper()
	tmp := path + ".migrating"
	defer func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(tmp + suffix)
		}
	}()
	testfile.Copy(tb, from, tmp)
	db, err := Open(context.Background(), tmp)
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// buildBenchDB writes the fixture into a new file and moves it to path once
// complete, so that an interrupted build leaves nothing half-built behind.
//
// Bench: n keys; n/20 owners, one in twenty of them system users. Every tenth
// key belongs to a system user and is live (active or inactive), so that
// revoking by type "system" revokes n/10 keys. The keys of people are 5%
// revoked, about 5% expired, 5% deactivated; 40% have an expiry, 70% were
// used. Other: n/10 live keys of n/200 people. Every key has its
// key.created event.
func buildBenchDB(tb testing.TB, path string, n int) {
	tb.Helper()
	ctx := context.Background()
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".building-*")
	if err != nil {
		tb.Fatal(err)
	}
	tmp.Close()
	defer func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(tmp.Name() + suffix)
		}
	}()
	db, err := Open(ctx, tmp.Name())
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()

	r := rand.New(rand.NewChaCha8([32]byte{'k', 'e', 'y', 'w', 'a', 'r', 'd'}))
	ids := rand.NewChaCha8([32]byte{'i', 'd', 's'})
	newID := func(prefix string) string {
		id, err := keyward.NewID(ids, prefix)
		if err != nil {
			tb.Fatal(err)
		}
		return id
	}
	span := int64(2 * 365 * 24 * time.Hour / time.Microsecond) // two years of history
	ago := func(max int64) time.Time {
		return benchNow.Add(-time.Duration(1+r.Int64N(max)) * time.Microsecond)
	}

	type tenantPlan struct {
		name, domain string
		keys, people int
		system       int
		index        int
	}
	plans := []tenantPlan{
		{"Bench", "bench.example", n, max(n/20-n/400, 10), max(n/400, 1), 0},
		{"Other", "other.example", n / 10, max(n/200, 5), 0, 1},
	}
	for _, plan := range plans {
		tn := &keyward.Tenant{ID: newID(keyward.PrefixTenant), Name: plan.name, CreatedAt: benchNow.Add(-3 * 365 * 24 * time.Hour),
			Settings: keyward.DefaultSettings()}
		admin := &keyward.User{ID: newID(keyward.PrefixUser), TenantID: tn.ID, Email: "admin@" + plan.domain,
			Name: plan.name + " Admin", Kind: keyward.KindUser, Roles: []string{keyward.RoleTenantAdmin, keyward.RoleDeveloper},
			Licensed: true, CreatedAt: tn.CreatedAt, UpdatedAt: tn.CreatedAt}
		var people, system []*keyward.User
		emails := map[string]int{}
		for i := range plan.people {
			first, last := benchdata.First[r.IntN(len(benchdata.First))], benchdata.Last[r.IntN(len(benchdata.Last))]
			local := first + "." + last
			emails[local]++
			if c := emails[local]; c > 1 {
				local += strconv.Itoa(c)
			}
			at := ago(span)
			people = append(people, &keyward.User{ID: newID(keyward.PrefixUser), TenantID: tn.ID,
				Email: local + "@corp." + plan.domain, Name: strings.ToUpper(first[:1]) + first[1:] + " " + strings.ToUpper(last[:1]) + last[1:],
				Kind: keyward.KindUser, Roles: []string{keyward.RoleDeveloper}, Licensed: i%7 != 0,
				PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
				CreatedAt:    at, UpdatedAt: at})
		}
		for i := range plan.system {
			team, purpose := benchdata.Teams[r.IntN(len(benchdata.Teams))], benchdata.Purposes[r.IntN(len(benchdata.Purposes))]
			at := ago(span)
			system = append(system, &keyward.User{ID: newID(keyward.PrefixUser), TenantID: tn.ID,
				Email: fmt.Sprintf("%s-%s-%d@svc.%s", team, purpose, i, plan.domain),
				Name:  fmt.Sprintf("%s %s service %d", team, purpose, i), Kind: keyward.KindSystem,
				Roles: []string{}, Licensed: false, CreatedAt: at, UpdatedAt: at})
		}
		err := db.Update(ctx, func(tx keyward.Tx) error {
			if err := tx.CreateTenant(ctx, tn); err != nil {
				return err
			}
			for _, u := range append(append([]*keyward.User{admin}, people...), system...) {
				if err := tx.CreateUser(ctx, u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}

		const batch = 10_000
		for lo := 0; lo < plan.keys; lo += batch {
			err := db.Update(ctx, func(tx keyward.Tx) error {
				events := make([]*keyward.Event, 0, batch)
				for i := lo; i < min(lo+batch, plan.keys); i++ {
					owner := people[r.IntN(len(people))]
					isSystem := plan.system > 0 && i%10 == 0
					if isSystem {
						owner = system[r.IntN(len(system))]
					}
					created := ago(span)
					k := &keyward.Key{ID: newID(keyward.PrefixKey), TenantID: tn.ID, OwnerID: owner.ID,
						Name: fmt.Sprintf("%s-%s-%s-%04d", benchdata.Teams[r.IntN(len(benchdata.Teams))],
							benchdata.Envs[r.IntN(len(benchdata.Envs))], benchdata.Purposes[r.IntN(len(benchdata.Purposes))], r.IntN(10_000)),
						Role: keyward.KeyRoleReadonly, Scopes: benchScopes[r.IntN(len(benchScopes))],
						Meta: json.RawMessage(`{}`), Hash: benchKeyHash(plan.index, i),
						Start: "kw_" + newID("")[:4], CreatedAt: created, UpdatedAt: created}
					if r.IntN(10) < 3 {
						k.Role = keyward.KeyRoleAdmin
					}
					if r.IntN(2) == 0 {
						k.Description = "Used by the " + owner.Name + " deployment; rotate every quarter."
					}
					if r.IntN(4) == 0 {
						k.Meta = json.RawMessage(`{"ticket":"OPS-` + strconv.Itoa(r.IntN(99999)) + `","team":"` +
							benchdata.Teams[r.IntN(len(benchdata.Teams))] + `"}`)
					}
					sinceCreated := benchNow.Sub(created).Microseconds()
					if r.IntN(10) < 7 || isSystem && r.IntN(10) < 9 {
						k.LastUsedAt = ptrTo(benchNow.Add(-time.Duration(r.Int64N(sinceCreated)) * time.Microsecond))
					}
					if !isSystem && plan.system > 0 {
						switch p := r.IntN(100); {
						case p < 5:
							k.RevokedAt = ptrTo(benchNow.Add(-time.Duration(r.Int64N(sinceCreated)) * time.Microsecond))
							k.RevokedBy, k.RevokeReason = ptrTo(owner.ID), ptrTo("rotated")
							k.UpdatedAt = *k.RevokedAt
						case p < 10:
							k.ExpiresAt = ptrTo(benchNow.Add(-time.Duration(r.Int64N(sinceCreated)) * time.Microsecond))
						case p < 45:
							k.ExpiresAt = ptrTo(benchNow.Add(time.Duration(1+r.Int64N(span/2)) * time.Microsecond))
						}
					}
					if r.IntN(20) == 0 {
						k.Disabled = true
					}
					if err := tx.CreateKey(ctx, k); err != nil {
						return fmt.Errorf("key %d: %w", i, err)
					}
					actor := keyward.Ref{Type: keyward.ActorUser, ID: owner.ID, Name: owner.Name}
					if isSystem {
						actor = keyward.Ref{Type: keyward.ActorUser, ID: admin.ID, Name: admin.Name}
					}
					events = append(events, &keyward.Event{ID: newID(keyward.PrefixEvent), TenantID: tn.ID,
						Time: created, Action: keyward.ActionKeyCreated, Actor: actor, ActorUserID: actor.ID,
						Target:        keyward.Ref{Type: keyward.TargetKey, ID: k.ID, Name: k.Name},
						TargetOwnerID: owner.ID, IP: "10.0.0.1", UserAgent: "keyward-cli/1.0",
						Details: map[string]any{"role": k.Role}})
				}
				return tx.InsertEvents(ctx, events...)
			})
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		tb.Fatal(err)
	}
}

func ptrTo[T any](v T) *T { return &v }

// openBench opens the cached fixture; the benchmarks that write work on a copy.
func openBench(b *testing.B, f *benchFixture) *DB {
	b.Helper()
	db, err := Open(context.Background(), f.path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// copyBench copies the fixture into the benchmark's temporary folder.
func copyBench(b *testing.B, f *benchFixture) *DB {
	b.Helper()
	dst := filepath.Join(b.TempDir(), "keyward.db")
	testfile.Copy(b, f.path, dst)
	db, err := Open(context.Background(), dst)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func benchView[T any](b *testing.B, db *DB, fn func(ctx context.Context, tx keyward.Tx) (T, error)) T {
	ctx := context.Background()
	var v T
	err := db.View(ctx, func(tx keyward.Tx) error {
		var err error
		v, err = fn(ctx, tx)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkListKeys reads the first page (50 keys, the contract's default)
// of the tenant of n keys under each sort, search and filter.
func BenchmarkListKeys(b *testing.B) {
	f := benchDB(b)
	db := openBench(b, f)
	cases := []struct {
		name string
		f    keyward.KeyFilter
	}{
		{"sort=-created_at", keyward.KeyFilter{Sort: "created_at", Desc: true}},
		{"sort=name", keyward.KeyFilter{Sort: "name"}},
		{"sort=-name", keyward.KeyFilter{Sort: "name", Desc: true}},
		{"sort=id", keyward.KeyFilter{Sort: "id"}},
		{"sort=owner", keyward.KeyFilter{Sort: "owner"}},
		{"sort=type", keyward.KeyFilter{Sort: "type"}},
		{"sort=status", keyward.KeyFilter{Sort: "status"}},
		{"sort=-status", keyward.KeyFilter{Sort: "status", Desc: true}},
		{"sort=last_used_at", keyward.KeyFilter{Sort: "last_used_at"}},
		{"sort=-last_used_at", keyward.KeyFilter{Sort: "last_used_at", Desc: true}},
		{"sort=expires_at", keyward.KeyFilter{Sort: "expires_at"}},
		{"q=combo", keyward.KeyFilter{Sort: "created_at", Desc: true, Q: benchdata.ComboFragment}},
		{"q=team", keyward.KeyFilter{Sort: "created_at", Desc: true, Q: benchdata.TeamFragment}},
		{"q=team/sort=name", keyward.KeyFilter{Sort: "name", Q: benchdata.TeamFragment}},
		{"q=team/sort=-name", keyward.KeyFilter{Sort: "name", Desc: true, Q: benchdata.TeamFragment}},
		{"q=team/sort=-last_used_at", keyward.KeyFilter{Sort: "last_used_at", Desc: true, Q: benchdata.TeamFragment}},
		{"q=team/status=active", keyward.KeyFilter{Sort: "created_at", Desc: true, Status: keyward.StatusActive, Q: benchdata.TeamFragment}},
		{"q=email", keyward.KeyFilter{Sort: "created_at", Desc: true, Q: benchdata.EmailFragment}},
		{"q=short", keyward.KeyFilter{Sort: "created_at", Desc: true, Q: benchdata.ShortFragment}},
		{"type=system", keyward.KeyFilter{Sort: "created_at", Desc: true, Type: keyward.KindSystem}},
		{"status=active", keyward.KeyFilter{Sort: "created_at", Desc: true, Status: keyward.StatusActive}},
		{"status=expired", keyward.KeyFilter{Sort: "created_at", Desc: true, Status: keyward.StatusExpired}},
		{"owner", keyward.KeyFilter{Sort: "created_at", Desc: true, OwnerID: f.owner}},
	}
	// The same searches without the search index, by LIKE in SQL: the
	// baseline, in the same run (about two seconds each at a million keys).
	like := openBench(b, f)
	like.search = nil
	for _, c := range cases {
		if c.f.Q != "" {
			cases = append(cases, struct {
				name string
				f    keyward.KeyFilter
			}{"sql-" + c.name, c.f})
		}
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			kf := c.f
			kf.TenantID, kf.Now, kf.PageSize = f.tenant.ID, benchNow, 50
			on := db
			if strings.HasPrefix(c.name, "sql-") {
				on = like
			}
			list := func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) { return tx.ListKeys(ctx, kf) }
			// The index of the tenant is built by its first search
			// (BenchmarkSearchIndexBuild); the figure is the searches after it.
			page := benchView(b, on, list)
			b.ReportAllocs()
			for b.Loop() {
				page = benchView(b, on, list)
			}
			b.ReportMetric(float64(page.Total), "total")
			if len(page.Keys) == 0 && kf.Q == "" {
				b.Fatal("empty first page")
			}
		})
	}
}

// BenchmarkSearchIndexBuild is the first search of a tenant since the
// server started: it reads the tenant's keys and users into the search
// index. heap-MiB is what the index holds afterwards.
func BenchmarkSearchIndexBuild(b *testing.B) {
	f := benchDB(b)
	db := openBench(b, f)
	kf := keyward.KeyFilter{TenantID: f.tenant.ID, Q: benchdata.TeamFragment, Sort: "created_at", Desc: true,
		PageSize: 50, Now: benchNow}
	var before, after runtime.MemStats
	for b.Loop() {
		b.StopTimer()
		db.search = newSearchIndex()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		benchView(b, db, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) { return tx.ListKeys(ctx, kf) })
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(db.search)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-MiB")
}

// BenchmarkListKeysNextPage reads a page in the middle of the list through a
// page token, which seeks in the sort's index.
func BenchmarkListKeysNextPage(b *testing.B) {
	f := benchDB(b)
	db := openBench(b, f)
	for _, c := range []struct {
		name string
		f    keyward.KeyFilter
	}{
		{"sort=-created_at", keyward.KeyFilter{Sort: "created_at", Desc: true}},
		{"sort=name", keyward.KeyFilter{Sort: "name"}},
		{"sort=owner", keyward.KeyFilter{Sort: "owner"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			kf := c.f
			kf.TenantID, kf.Now, kf.PageSize = f.tenant.ID, benchNow, 200
			for range 5 { // the sixth page
				page := benchView(b, db, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) {
					return tx.ListKeys(ctx, kf)
				})
				kf.PageToken = page.NextPageToken
			}
			kf.PageSize = 50
			b.ReportAllocs()
			for b.Loop() {
				benchView(b, db, func(ctx context.Context, tx keyward.Tx) (*keyward.KeyPage, error) {
					return tx.ListKeys(ctx, kf)
				})
			}
		})
	}
}

// BenchmarkKeyTotal is the cost of ListKeys' total alone.
func BenchmarkKeyTotal(b *testing.B) {
	f := benchDB(b)
	db := openBench(b, f)
	for _, c := range []struct {
		name string
		f    keyward.KeyFilter
	}{
		{"all", keyward.KeyFilter{}},
		{"type=system", keyward.KeyFilter{Type: keyward.KindSystem}},
		{"status=active", keyward.KeyFilter{Status: keyward.StatusActive}},
		{"q=combo", keyward.KeyFilter{Q: benchdata.ComboFragment}},
		{"q=team", keyward.KeyFilter{Q: benchdata.TeamFragment}},
		{"q=email", keyward.KeyFilter{Q: benchdata.EmailFragment}},
	} {
		b.Run(c.name, func(b *testing.B) {
			kf := c.f
			kf.TenantID, kf.Now = f.tenant.ID, benchNow
			var n int
			b.ReportAllocs()
			for b.Loop() {
				n = benchView(b, db, func(ctx context.Context, ktx keyward.Tx) (int, error) {
					w, err := newKeyWhere(kf, keysFound{}, false, keySort{})
					if err != nil {
						return 0, err
					}
					return ktx.(*tx).keyTotal(ctx, w, "keys")
				})
			}
			b.ReportMetric(float64(n), "total")
		})
	}
}

// BenchmarkKeyByHash is a verification's cache miss: the key by its digest
// and its tenant, in one View, for keys drawn at random.
func BenchmarkKeyByHash(b *testing.B) {
	f := benchDB(b)
	db := openBench(b, f)
	r := rand.New(rand.NewPCG(1, 2))
	hashes := make([][]byte, 4096)
	for i := range hashes {
		hashes[i] = benchKeyHash(0, r.IntN(f.n))
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		err := db.View(ctx, func(tx keyward.Tx) error {
			k, err := tx.KeyByHash(ctx, hashes[i%len(hashes)])
			if err != nil {
				return err
			}
			_, err = tx.TenantByID(ctx, k.TenantID)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// restoreRevoked undoes a benchmark's revocation outside the timer: it
// settles any revocation mark (and returns how long that took), then the
// keys revoked by `by` become live again and the key.revoked events go, and
// the WAL is checkpointed so that every iteration starts from the same state.
func restoreRevoked(b *testing.B, db *DB, tenantID, by string) time.Duration {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	if err := db.settler.Settle(ctx, ""); err != nil {
		b.Fatal(err)
	}
	settled := time.Since(start)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE keys SET revoked_at = NULL, revoked_by = NULL, revoke_reason = NULL, updated_at = created_at
			WHERE tenant_id = ? AND revoked_by = ?`, []any{tenantID, by}},
		{`DELETE FROM events WHERE tenant_id = ? AND action = 'key.revoked' AND actor_id = ?`, []any{tenantID, by}},
		// The events' counter, which only the store's writes keep.
		{`UPDATE event_totals SET n = (SELECT count(*) FROM events WHERE tenant_id = ?1) WHERE tenant_id = ?1`, []any{tenantID}},
	} {
		if _, err := db.writer.ExecContext(ctx, q.sql, q.args...); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.writer.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	return settled
}

// BenchmarkRevokeKeys is a bulk revocation in the store: RevokeKeys with
// one key.revoked event per key, in one Update, as Service.BulkRevoke does.
// "type=system" revokes the n/10 system keys among the n keys of Bench;
// "all" every key of Other (n/10).
func BenchmarkRevokeKeys(b *testing.B) {
	f := benchDB(b)
	for _, c := range []struct {
		name  string
		admin *keyward.User
		typ   string
		want  int
	}{
		{"type=system", f.admin, keyward.KindSystem, f.systemKeys},
		{"all", f.otherAdmin, "", f.otherKeys},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := copyBench(b, f)
			ctx := context.Background()
			ids := rand.NewChaCha8([32]byte{'r'})
			actor := keyward.Ref{Type: keyward.ActorUser, ID: c.admin.ID, Name: c.admin.Name}
			var settle time.Duration // writing the rows of a mark, after the answer
			b.ReportAllocs()
			for b.Loop() {
				var n int
				err := db.Update(ctx, func(tx keyward.Tx) error {
					keys, err := tx.RevokeKeys(ctx, keyward.RevokeSpec{TenantID: c.admin.TenantID, Type: c.typ,
						At: benchNow, By: c.admin.ID, Reason: ptrTo("incident 42"),
						Event: &keyward.Event{Time: benchNow, TenantID: c.admin.TenantID,
							Action: keyward.ActionKeyRevoked, Actor: actor, ActorUserID: c.admin.ID,
							Target: keyward.Ref{Type: keyward.TargetKey}, IP: "10.0.0.7", UserAgent: "keyward-cli/1.0",
							Details: map[string]any{"bulk": true, "reason": "incident 42"}},
						NewID: func() (string, error) {
							return keyward.NewID(ids, keyward.PrefixEvent)
						}})
					n = len(keys)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				if n != c.want {
					b.Fatalf("revoked %d keys, want %d", n, c.want)
				}
				b.StopTimer()
				settle += restoreRevoked(b, db, c.admin.TenantID, c.admin.ID)
				b.StartTimer()
			}
			b.ReportMetric(float64(c.want), "keys")
			b.ReportMetric(settle.Seconds()/float64(b.N), "settle-s")
		})
	}
}

// BenchmarkBulkRevoke is the same through Service.BulkRevoke, with the
// domain's event building included.
func BenchmarkBulkRevoke(b *testing.B) {
	f := benchDB(b)
	hasher, err := keyward.NewHasher([]byte("keyward-bench-pepper-0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		tenant *keyward.Tenant
		admin  *keyward.User
		in     keyward.BulkRevokeInput
		want   int
	}{
		{"type=system", f.tenant, f.admin, keyward.BulkRevokeInput{Type: keyward.KindSystem}, f.systemKeys},
		{"all", f.other, f.otherAdmin, keyward.BulkRevokeInput{All: true}, f.otherKeys},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := copyBench(b, f)
			svc := keyward.NewService(db, hasher, keyward.Options{
				Now:            func() time.Time { return benchNow },
				PasswordParams: &keyward.PasswordParams{Memory: 64, Time: 1, Threads: 1},
			})
			p := &keyward.Principal{Tenant: c.tenant, User: c.admin}
			in := c.in
			in.Reason = ptrTo("incident 42")
			ctx := context.Background()
			var settle time.Duration
			b.ReportAllocs()
			for b.Loop() {
				res, err := svc.BulkRevoke(ctx, p, in)
				if err != nil {
					b.Fatal(err)
				}
				if res.Revoked != c.want {
					b.Fatalf("revoked %d keys, want %d", res.Revoked, c.want)
				}
				b.StopTimer()
				settle += restoreRevoked(b, db, c.tenant.ID, c.admin.ID)
				b.StartTimer()
			}
			b.ReportMetric(float64(c.want), "keys")
			b.ReportMetric(settle.Seconds()/float64(b.N), "settle-s")
		})
	}
}

// TestBenchFixture checks the fixture builder on a small database, so that a
// broken builder shows up in plain "go test" rather than an hour into a run.
func TestBenchFixture(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.db")
	buildBenchDB(t, path, 2000)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var keys, events, system int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM keys), (SELECT count(*) FROM events),
		(SELECT count(*) FROM keys k JOIN users u ON u.id = k.owner_id WHERE u.kind = 'system')`).Scan(&keys, &events, &system); err != nil {
		t.Fatal(err)
	}
	if keys != 2200 || events != 2200 || system != 200 {
		t.Errorf("fixture of 2000 keys: %d keys, %d events, %d system keys; want 2200, 2200, 200", keys, events, system)
	}
	var names []string
	rows, err := db.Query(`SELECT name FROM keys ORDER BY rowid LIMIT 3`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		names = append(names, s)
	}
	sort.Strings(names)
	t.Logf("key names: %q", names)
}
