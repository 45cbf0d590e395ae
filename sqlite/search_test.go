package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// searchFixture is a store with helpers to change it as a user would.
type searchFixture struct {
	t    *testing.T
	ctx  context.Context
	db   *DB
	path string
	now  time.Time
}

func newSearchFixture(t *testing.T) *searchFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "search.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &searchFixture{t: t, ctx: context.Background(), db: db, path: path,
		now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
}

func (f *searchFixture) id(prefix string) string {
	id, err := keyward.NewID(rand.Reader, prefix)
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *searchFixture) update(s keyward.Store, fn func(keyward.Tx) error) {
	f.t.Helper()
	if err := s.Update(f.ctx, fn); err != nil {
		f.t.Fatal(err)
	}
}

func (f *searchFixture) tenant(name string) *keyward.Tenant {
	tn := &keyward.Tenant{ID: f.id(keyward.PrefixTenant), Name: name, CreatedAt: f.now, Settings: keyward.DefaultSettings()}
	f.update(f.db, func(tx keyward.Tx) error { return tx.CreateTenant(f.ctx, tn) })
	return tn
}

func (f *searchFixture) user(s keyward.Store, tenantID, name, email, kind string) *keyward.User {
	u := &keyward.User{ID: f.id(keyward.PrefixUser), TenantID: tenantID, Email: email, Name: name, Kind: kind,
		Roles: []string{}, Licensed: true, CreatedAt: f.now, UpdatedAt: f.now}
	f.update(s, func(tx keyward.Tx) error { return tx.CreateUser(f.ctx, u) })
	return u
}

func (f *searchFixture) key(s keyward.Store, owner *keyward.User, name string, at time.Time) *keyward.Key {
	hash := make([]byte, 32)
	rand.Read(hash)
	k := &keyward.Key{ID: f.id(keyward.PrefixKey), TenantID: owner.TenantID, Name: name, OwnerID: owner.ID,
		Role: keyward.KeyRoleAdmin, Scopes: []string{}, Meta: json.RawMessage(`{}`), Hash: hash, Start: "kw_Ab3d",
		CreatedAt: at, UpdatedAt: at}
	f.update(s, func(tx keyward.Tx) error { return tx.CreateKey(f.ctx, k) })
	return k
}

// list pages through the whole answer to kf: in a read transaction, which
// searches with the index, or in a write transaction, which searches in SQL.
// It fails the test if a read transaction's search did not use the index.
func (f *searchFixture) list(kf keyward.KeyFilter, indexed bool) (ids []string, total int) {
	f.t.Helper()
	run := f.db.Update
	if indexed {
		run = f.db.View
	}
	for range 1000 {
		var page *keyward.KeyPage
		err := run(f.ctx, func(t keyward.Tx) error {
			var err error
			if indexed {
				if _, ok, err := t.(*tx).searchKeys(f.ctx, kf, "", nil); err != nil || !ok {
					return fmt.Errorf("the index did not answer q=%q: %v", kf.Q, err)
				}
			}
			page, err = t.ListKeys(f.ctx, kf)
			return err
		})
		if err != nil {
			f.t.Fatalf("ListKeys %+v: %v", kf, err)
		}
		for _, k := range page.Keys {
			ids = append(ids, k.ID)
		}
		total = page.Total
		if page.NextPageToken == "" {
			return ids, total
		}
		kf.PageToken = page.NextPageToken
	}
	f.t.Fatalf("ListKeys %+v: no last page", kf)
	return nil, 0
}

// same checks that the index and SQL give the same pages and total for kf.
func (f *searchFixture) same(kf keyward.KeyFilter) {
	f.t.Helper()
	want, wantTotal := f.list(kf, false)
	got, gotTotal := f.list(kf, true)
	if !slices.Equal(got, want) || gotTotal != wantTotal {
		f.t.Fatalf("q=%q type=%q status=%q owner=%q sort=%s desc=%v:\nindex %d keys (total %d) %v\nSQL   %d keys (total %d) %v",
			kf.Q, kf.Type, kf.Status, kf.OwnerID, kf.Sort, kf.Desc, len(got), gotTotal, got, len(want), wantTotal, want)
	}
}

// TestSearchIndexAgreesWithSQL changes a store at random, as people and
// cascades would, and after every change asks both searches the same
// questions: the index must find exactly what LIKE finds, in the same order,
// with the same total, page after page.
func TestSearchIndexAgreesWithSQL(t *testing.T) {
	f := newSearchFixture(t)
	r := mrand.New(mrand.NewPCG(1, uint64(time.Now().UnixNano())))
	words := []string{"alpha", "Beta", "gam_ma", "DELTA", "x%y", `back\slash`, "Émile", "ledger", "LEDGER-prod", "a"}
	tenants := []*keyward.Tenant{f.tenant("Acme"), f.tenant("Other")}
	var users []*keyward.User
	var keys []*keyward.Key
	made := 0
	addUser := func(tn *keyward.Tenant) {
		kind := keyward.KindUser
		if r.IntN(3) == 0 {
			kind = keyward.KindSystem
		}
		n := made
		made++
		users = append(users, f.user(f.db, tn.ID, fmt.Sprintf("%s Person%d", words[r.IntN(len(words))], n),
			fmt.Sprintf("p%d.%s@Example.ORG", n, strings.ToLower(words[r.IntN(4)])), kind))
	}
	for _, tn := range tenants {
		for range 4 {
			addUser(tn)
		}
	}
	at := f.now.Add(-100 * time.Hour)
	addKey := func() {
		owner := users[r.IntN(len(users))]
		at = at.Add(time.Duration(r.IntN(3)) * time.Minute) // ties in created_at
		keys = append(keys, f.key(f.db, owner, fmt.Sprintf("%s-%d %s", words[r.IntN(len(words))], r.IntN(50),
			words[r.IntN(len(words))]), at))
	}
	for range 30 {
		addKey()
	}
	live := func() []*keyward.Key {
		var out []*keyward.Key
		for _, k := range keys {
			if k != nil {
				out = append(out, k)
			}
		}
		return out
	}
	fragment := func() string {
		var s string
		switch r.IntN(4) {
		case 0:
			if ks := live(); len(ks) > 0 {
				s = ks[r.IntN(len(ks))].ID
			}
		case 1:
			s = users[r.IntN(len(users))].Email
		default:
			if ks := live(); len(ks) > 0 {
				s = ks[r.IntN(len(ks))].Name
			}
		}
		if s == "" {
			return "zz"
		}
		i := r.IntN(len(s))
		j := min(len(s), i+1+r.IntN(8))
		b := []byte(s[i:j])
		for x := range b {
			if r.IntN(2) == 0 {
				b[x] = strings.ToUpper(string(b[x]))[0]
			}
		}
		if !searchable(string(b)) {
			return "zz"
		}
		return string(b)
	}
	defaultWalk := walkSearch
	defer func() { walkSearch = defaultWalk }()
	ask := func() {
		tn := tenants[r.IntN(2)]
		kf := keyward.KeyFilter{TenantID: tn.ID, Q: fragment(), PageSize: 1 + r.IntN(7), Now: f.now,
			Sort: keyward.KeySortColumns[r.IntN(len(keyward.KeySortColumns))], Desc: r.IntN(2) == 0}
		switch r.IntN(6) {
		case 0:
			kf.Type = keyward.KindSystem
		case 1:
			kf.Type = keyward.KindUser
		case 2:
			kf.Status = keyward.StatusActive
		case 3:
			kf.OwnerID = users[r.IntN(len(users))].ID
		}
		walk := r.IntN(3) // by list, by walking the sort's index, or as a server would choose
		walkSearch = func(m, n, limit int) bool { return walk == 1 || walk == 2 && defaultWalk(m, n, limit) }
		f.same(kf)
	}

	for step := range 300 {
		switch op := r.IntN(10); {
		case op < 3:
			addKey()
		case op == 3: // rename
			if ks := live(); len(ks) > 0 {
				k := ks[r.IntN(len(ks))]
				k.Name = words[r.IntN(len(words))] + " renamed"
				k.UpdatedAt = k.UpdatedAt.Add(time.Second)
				f.update(f.db, func(tx keyward.Tx) error { return tx.UpdateKey(f.ctx, k) })
			}
		case op == 4: // delete, often the newest (whose rowid SQLite reuses)
			i := len(keys) - 1
			if r.IntN(2) == 0 {
				i = r.IntN(len(keys))
			}
			if k := keys[i]; k != nil {
				f.update(f.db, func(tx keyward.Tx) error { return tx.DeleteKey(f.ctx, k.TenantID, k.ID) })
				keys[i] = nil
			}
		case op == 5: // a user renamed, or its email changed by another program
			u := users[r.IntN(len(users))]
			u.Name = words[r.IntN(len(words))] + " Renamed"
			f.update(f.db, func(t keyward.Tx) error {
				if err := t.UpdateUser(f.ctx, u); err != nil && !keyward.IsCode(err, keyward.ENotFound) {
					return err
				}
				_, err := t.(*tx).tx.ExecContext(f.ctx, `UPDATE users SET email = ? WHERE id = ?`,
					fmt.Sprintf("changed%d@%s.example", step, strings.ToLower(words[r.IntN(4)])), u.ID)
				return err
			})
		case op == 6: // a user deleted with its keys
			i := r.IntN(len(users))
			u := users[i]
			users = slices.Delete(users, i, i+1)
			f.update(f.db, func(tx keyward.Tx) error {
				err := tx.DeleteUser(f.ctx, u.TenantID, u.ID)
				if keyward.IsCode(err, keyward.ENotFound) {
					return nil
				}
				return err
			})
			for i, k := range keys {
				if k != nil && k.OwnerID == u.ID {
					keys[i] = nil
				}
			}
			addUser(tenants[r.IntN(2)])
		case op == 7: // revoked: status filters see it
			if ks := live(); len(ks) > 0 {
				k := ks[r.IntN(len(ks))]
				k.RevokedAt = &f.now
				f.update(f.db, func(tx keyward.Tx) error { return tx.UpdateKey(f.ctx, k) })
			}
		}
		for range 3 {
			ask()
		}
	}
}

// searchNames is the names of the keys a read transaction's search finds,
// sorted.
func (f *searchFixture) searchNames(tenantID, q string) []string {
	f.t.Helper()
	var names []string
	err := f.db.View(f.ctx, func(t keyward.Tx) error {
		if _, ok, err := t.(*tx).searchKeys(f.ctx, keyward.KeyFilter{TenantID: tenantID, Q: q}, "", nil); err != nil || !ok {
			return fmt.Errorf("the index did not answer q=%q: %v", q, err)
		}
		page, err := t.ListKeys(f.ctx, keyward.KeyFilter{TenantID: tenantID, Q: q, Sort: "name", PageSize: 1000, Now: f.now})
		if page == nil {
			return err
		}
		for _, k := range page.Keys {
			names = append(names, k.Name)
		}
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return names
}

// TestSearchIndexSeesOtherWriters: a key written through another connection
// to the file ("keyward admin" beside a running server) is found by the next
// search, because the log is in the database, not in this process.
func TestSearchIndexSeesOtherWriters(t *testing.T) {
	f := newSearchFixture(t)
	tn := f.tenant("Acme")
	u := f.user(f.db, tn.ID, "Ann", "ann@example.com", keyward.KindUser)
	f.key(f.db, u, "first ledger", f.now)
	if got := f.searchNames(tn.ID, "ledger"); !slices.Equal(got, []string{"first ledger"}) {
		t.Fatalf("before: %q", got)
	}
	other, err := Open(f.ctx, f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	f.key(other, u, "second ledger", f.now)
	v := f.user(other, tn.ID, "Ledger Bot", "bot@example.com", keyward.KindSystem)
	f.key(other, v, "bot key", f.now)
	if got := f.searchNames(tn.ID, "ledger"); !slices.Equal(got, []string{"bot key", "first ledger", "second ledger"}) {
		t.Errorf("after another connection wrote: %q", got)
	}
}

// TestSearchIndexRebuildsPastTheLog: when more changes than the log keeps
// happened since the index last looked, it rebuilds rather than miss the
// ones the log no longer holds.
func TestSearchIndexRebuildsPastTheLog(t *testing.T) {
	f := newSearchFixture(t)
	tn := f.tenant("Acme")
	u := f.user(f.db, tn.ID, "Ann", "ann@example.com", keyward.KindUser)
	f.key(f.db, u, "old ledger", f.now)
	if got := f.searchNames(tn.ID, "ledger"); len(got) != 1 {
		t.Fatalf("before: %q", got)
	}
	f.key(f.db, u, "missed ledger", f.now)
	// As if searchLogKeep more changes had followed: the next one prunes
	// every row the index has not read.
	f.update(f.db, func(t keyward.Tx) error {
		_, err := t.(*tx).tx.ExecContext(f.ctx, `UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'search_log'`, searchLogKeep)
		return err
	})
	f.key(f.db, u, "new ledger", f.now)
	var rows int
	f.update(f.db, func(t keyward.Tx) error {
		return t.(*tx).tx.QueryRowContext(f.ctx, `SELECT count(*) FROM search_log`).Scan(&rows)
	})
	if rows != 1 {
		t.Fatalf("the log holds %d rows, want only the newest", rows)
	}
	if got := f.searchNames(tn.ID, "ledger"); !slices.Equal(got, []string{"missed ledger", "new ledger", "old ledger"}) {
		t.Errorf("after the log was pruned: %q", got)
	}
}

// TestSearchIndexReusedRowids: SQLite gives a new key the rowid of a
// deleted largest one, and may give it a rowid the index never had below its
// last: the index revives the entry, or rebuilds.
func TestSearchIndexReusedRowids(t *testing.T) {
	f := newSearchFixture(t)
	tn := f.tenant("Acme")
	u := f.user(f.db, tn.ID, "Ann", "ann@example.com", keyward.KindUser)
	k1 := f.key(f.db, u, "#one", f.now)
	k2 := f.key(f.db, u, "#two", f.now)
	k3 := f.key(f.db, u, "#three", f.now)
	k4 := f.key(f.db, u, "#four", f.now)
	del := func(k *keyward.Key) {
		f.update(f.db, func(t keyward.Tx) error { return t.DeleteKey(f.ctx, k.TenantID, k.ID) })
	}
	del(k2)
	del(k3)
	if got := f.searchNames(tn.ID, "#"); !slices.Equal(got, []string{"#four", "#one"}) {
		t.Fatalf("built with a hole: %q", got)
	}
	del(k4)
	f.key(f.db, u, "#five", f.now) // the rowid of k2: below the index's last, never in it
	if got := f.searchNames(tn.ID, "#f"); !slices.Equal(got, []string{"#five"}) {
		t.Errorf("a rowid in the hole: %q", got)
	}
	six := f.key(f.db, u, "#six", f.now)
	if got := f.searchNames(tn.ID, "#"); !slices.Equal(got, []string{"#five", "#one", "#six"}) {
		t.Errorf("appended: %q", got)
	}
	del(six)
	f.key(f.db, u, "#seven", f.now) // six's rowid, dead in the index
	del(k1)
	if got := f.searchNames(tn.ID, "#"); !slices.Equal(got, []string{"#five", "#seven"}) {
		t.Errorf("revived: %q", got)
	}
	// Through the posting lists, which hold the entry's old text ("#six").
	if got := f.searchNames(tn.ID, "#SEV"); !slices.Equal(got, []string{"#seven"}) {
		t.Errorf("revived, by a trigram of its new text: %q", got)
	}
	if got := f.searchNames(tn.ID, "#si"); len(got) != 0 {
		t.Errorf("revived, by a trigram of its old text: %q", got)
	}
}

// TestIndexSearch: the index built ahead of any search, for every tenant,
// is the one searches then use.
func TestIndexSearch(t *testing.T) {
	f := newSearchFixture(t)
	a, b := f.tenant("Acme"), f.tenant("Other")
	ua := f.user(f.db, a.ID, "Ann", "ann@example.com", keyward.KindUser)
	ub := f.user(f.db, b.ID, "Bob", "bob@example.com", keyward.KindUser)
	for i := range 3 {
		f.key(f.db, ua, fmt.Sprintf("#a%d", i), f.now)
	}
	f.key(f.db, ub, "#b", f.now)
	tenants, keys, err := f.db.IndexSearch(f.ctx)
	if err != nil || tenants != 2 || keys != 4 {
		t.Fatalf("IndexSearch: %d tenants, %d keys, %v; want 2 and 4", tenants, keys, err)
	}
	built := f.db.search.slot(a.ID).ti
	if built == nil || f.db.search.slot(b.ID).ti == nil {
		t.Fatal("IndexSearch built no index")
	}
	if got := f.searchNames(a.ID, "#"); !slices.Equal(got, []string{"#a0", "#a1", "#a2"}) {
		t.Errorf("search after IndexSearch: %q", got)
	}
	if f.db.search.slot(a.ID).ti != built {
		t.Error("the search built the index again")
	}
}

// TestSearchIndexOlderSnapshot: a read transaction that began before the
// index moved on must not use it: SQLite gave a deleted key's rowid to a new
// key since, and that rowid names the old key in this snapshot. It searches
// in SQL instead, and finds what its snapshot holds.
func TestSearchIndexOlderSnapshot(t *testing.T) {
	f := newSearchFixture(t)
	tn := f.tenant("Acme")
	u := f.user(f.db, tn.ID, "Ann", "ann@example.com", keyward.KindUser)
	f.key(f.db, u, "#alpha", f.now)
	old := f.key(f.db, u, "#zzz-old", f.now)
	f.searchNames(tn.ID, "#alpha")
	err := f.db.View(f.ctx, func(ktx keyward.Tx) error {
		if _, err := ktx.ListKeys(f.ctx, keyward.KeyFilter{TenantID: tn.ID, Q: "#alpha", Now: f.now}); err != nil {
			return err // the snapshot begins here
		}
		f.update(f.db, func(tx keyward.Tx) error { return tx.DeleteKey(f.ctx, tn.ID, old.ID) })
		f.key(f.db, u, "#beta", f.now) // old's rowid
		if got := f.searchNames(tn.ID, "#beta"); !slices.Equal(got, []string{"#beta"}) {
			return fmt.Errorf("a newer reader: %q", got)
		}
		for _, sort := range []string{"created_at", "role"} {
			p, err := ktx.ListKeys(f.ctx, keyward.KeyFilter{TenantID: tn.ID, Q: "#beta", Now: f.now, Sort: sort, PageSize: 10})
			if err != nil {
				return err
			}
			if len(p.Keys) != 0 || p.Total != 0 {
				t.Errorf("the older snapshot, sort=%s: %d keys (total %d), want none, as SQL finds", sort, len(p.Keys), p.Total)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSearchDuringBuild: while a tenant's index is being built (seconds at
// a million keys), a search does not wait for it, holding a reader
// connection that verification needs: it searches in SQL.
func TestSearchDuringBuild(t *testing.T) {
	f := newSearchFixture(t)
	tn := f.tenant("Acme")
	u := f.user(f.db, tn.ID, "Ann", "ann@example.com", keyward.KindUser)
	f.key(f.db, u, "#one", f.now)
	sl := f.db.search.slot(tn.ID)
	sl.mu.Lock() // as a build holds it
	sl.building.Store(true)
	done := make(chan []string)
	go func() {
		var names []string
		err := f.db.View(f.ctx, func(ktx keyward.Tx) error {
			p, err := ktx.ListKeys(f.ctx, keyward.KeyFilter{TenantID: tn.ID, Q: "#o", Now: f.now})
			if p != nil {
				for _, k := range p.Keys {
					names = append(names, k.Name)
				}
			}
			return err
		})
		if err != nil {
			t.Error(err)
		}
		done <- names
	}()
	select {
	case got := <-done:
		if !slices.Equal(got, []string{"#one"}) {
			t.Errorf("search during a build: %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Error("the search waited for the build")
	}
	sl.building.Store(false)
	sl.mu.Unlock()
}

// TestSearchIndexOwnerlessKey: a key whose owner is gone (written with
// foreign keys off) is left out, as the SQL search's JOIN leaves it out; the
// rest of the tenant is still searched through the index.
func TestSearchIndexOwnerlessKey(t *testing.T) {
	f := newSearchFixture(t)
	tn := f.tenant("Acme")
	u := f.user(f.db, tn.ID, "Ann", "ann@example.com", keyward.KindUser)
	f.key(f.db, u, "#kept", f.now)
	lost := f.key(f.db, u, "#lost", f.now)
	orphan := func() {
		raw, err := sql.Open("sqlite", "file:"+f.path+"?_pragma=foreign_keys(OFF)&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`UPDATE keys SET owner_id = 'usr_gone' WHERE id = ?`, lost.ID); err != nil {
			t.Fatal(err)
		}
	}
	orphan() // before the index is built
	if got := f.searchNames(tn.ID, "#"); !slices.Equal(got, []string{"#kept"}) {
		t.Errorf("built with an ownerless key: %q", got)
	}

	again := f.key(f.db, u, "#again", f.now)
	f.searchNames(tn.ID, "#")
	lost = again
	orphan() // after: the log's change names it
	if got := f.searchNames(tn.ID, "#"); !slices.Equal(got, []string{"#kept"}) {
		t.Errorf("a key that lost its owner: %q", got)
	}
}

// TestSearchIndexArenaWaste: a key renamed over and over leaves its old
// texts in the arena; once they are half of it, the index is rebuilt.
func TestSearchIndexArenaWaste(t *testing.T) {
	ti := newTenantIndex()
	ti.putUser(1, "usr_1", "Ann", "ann@example.com", false)
	ti.putKey(1, "first", "key_1", "usr_1", 0)
	long := strings.Repeat("x", 1000)
	for i := 0; !ti.stale; i++ {
		if i > 1000 {
			t.Fatalf("%d renames, arena of %d bytes, %d wasted: never stale", i, len(ti.arena), ti.wasted)
		}
		ti.putKey(1, fmt.Sprintf("%s%d", long, i), "key_1", "usr_1", 0)
	}
	if len(ti.arena) > 1<<17 {
		t.Errorf("stale only at an arena of %d bytes", len(ti.arena))
	}
}
