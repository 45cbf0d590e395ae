package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"

	"github.com/keyward/keyward"
)

// searchLogKeep is how many changes search_log keeps: its prune trigger
// (migration 00006) deletes what is older.
const searchLogKeep = 100_000

// walkSearch tells how a page of a search's m matching keys, of the
// tenant's n, is found when the sort's index can give the tenant's keys in
// order: by reading the m rows and sorting them (a random read a row), or
// by walking the sort's index and testing each entry's rowid (kw_match),
// which finds limit matches after about limit × n / m entries, each several
// times cheaper than a random read. A variable for tests.
var walkSearch = func(m, n, limit int) bool { return m*m*5 > limit*n }

// searchIndex holds the substring index (tenantIndex) of each tenant, each
// as of its own position in search_log: a search first reads the log from
// there and applies what changed to its tenant, so that it sees every key
// committed before its read transaction began.
type searchIndex struct {
	mu      sync.Mutex
	tenants map[string]*searchSlot
}

// searchSlot is one tenant's index and the log position it reflects.
type searchSlot struct {
	mu       sync.Mutex
	building atomic.Bool  // a build holds mu, for seconds at a million keys
	ti       *tenantIndex // nil: not built yet
	seq      int64        // the search_log position ti reflects
}

func newSearchIndex() *searchIndex {
	return &searchIndex{tenants: map[string]*searchSlot{}}
}

func (s *searchIndex) slot(tenant string) *searchSlot {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.tenants[tenant]
	if sl == nil {
		sl = &searchSlot{}
		s.tenants[tenant] = sl
	}
	return sl
}

// tryLock takes the slot, waiting for a search that uses it (milliseconds)
// but not for a build: a search that waited would hold its reader
// connection for seconds, and enough of them would leave none for
// verification. It searches in SQL meanwhile.
func (sl *searchSlot) tryLock() bool {
	for !sl.mu.TryLock() {
		if sl.building.Load() {
			return false
		}
		time.Sleep(50 * time.Microsecond)
	}
	return true
}

var (
	qSearchHead = readQuery(`SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'search_log'), 0)`)
	qSearchLog  = readQuery(`SELECT tbl, row FROM search_log WHERE seq > ? AND seq <= ? AND tenant_id = ? ORDER BY seq`)
	qSearchUser = readQuery(`SELECT rowid, tenant_id, id, name, email, kind FROM users
		WHERE rowid IN (SELECT value FROM json_each(?))`)
	qSearchKey = readQuery(`SELECT rowid, tenant_id, name, id, owner_id, created_at FROM keys
		WHERE rowid IN (SELECT value FROM json_each(?))`)
	qIndexUsers = readQuery(`SELECT rowid, id, name, email, kind FROM users WHERE tenant_id = ? ORDER BY rowid`)
	// Two narrow indexes rather than every key's row.
	qIndexKeys     = readQuery(`SELECT rowid, name, id, owner_id FROM keys INDEXED BY keys_search WHERE tenant_id = ?`)
	qIndexCreated  = readQuery(`SELECT rowid, created_at FROM keys INDEXED BY keys_by_created_at WHERE tenant_id = ?`)
	qIndexKeyCount = readQuery(`SELECT coalesce(sum(n), 0) FROM key_totals WHERE tenant_id = ?`)
	qTenantIDs     = readQuery(`SELECT id FROM tenants`)
)

// searchable tells whether the index answers a fragment: ASCII (the index
// folds ASCII letters only, as LIKE does; any other fragment takes the SQL
// search, which folds by Unicode) without NUL (the index's separator).
func searchable(q string) bool {
	return q != "" && isASCII(q) && !strings.ContainsRune(q, 0)
}

// searchKeys finds the keys of f's tenant that match f.Q, with f's owner and
// type, in the index. ok is false where the index does not answer, and the
// SQL search must.
//
// Where the sort is one the index orders by exactly (indexedOrder) and no
// status filters the keys further, only the keys that can be on the page
// come back (tenantIndex.candidates), after the page token's position when
// there is one, and found.narrowed says so.
func (t *tx) searchKeys(ctx context.Context, f keyward.KeyFilter, sortName string, after *keyward.Cursor) (found keysFound, ok bool, err error) {
	s := t.search
	if s == nil || !searchable(f.Q) {
		return found, false, nil
	}
	sl := s.slot(f.TenantID)
	if !sl.tryLock() {
		return found, false, nil
	}
	defer sl.mu.Unlock()
	ti, err := t.syncSlot(ctx, sl, f.TenantID)
	if ti == nil || err != nil {
		return found, false, err
	}
	kq := keyQuery{q: foldASCII(nil, f.Q), owner: f.OwnerID}
	switch f.Type {
	case keyward.KindSystem:
		kq.system = 1
	case keyward.KindUser:
		kq.system = -1
	}
	entries := ti.search(kq)
	found = keysFound{total: len(entries), of: ti.live()}
	if f.Status == "" && indexedOrder(sortName) {
		o := pageOrder{column: sortName, desc: f.Desc, size: pageSize(f.PageSize) + 1}
		if after != nil {
			o.after = true
			if sortName == "created_at" {
				if o.afterTime, err = strconv.ParseInt(after.Value, 10, 64); err != nil {
					return found, false, keyward.Errorf(keyward.EInvalid, "invalid page_token")
				}
			} else {
				o.afterText = foldASCII(nil, after.Value)
			}
		}
		entries, found.narrowed = ti.candidates(entries, o), true
	}
	found.rows = ti.rows(entries)
	if found.narrowed {
		slices.Sort(found.rows)
	}
	return found, true, nil
}

// keysFound is what the index found of a search: rowids, ascending.
type keysFound struct {
	rows  []int64
	total int // the keys that match, on every page
	of    int // the tenant's keys
	// narrowed: rows are only the keys that can be on the page
	// (tenantIndex.candidates), not every key that matches.
	narrowed bool
}

// syncSlot is the slot's index brought up to this transaction's position
// of the log, or built there, or nil when this transaction's snapshot is
// older than the index (the rowids it holds may name other keys in it, as
// SQLite reuses a deleted largest rowid). sl.mu is held.
func (t *tx) syncSlot(ctx context.Context, sl *searchSlot, tenant string) (*tenantIndex, error) {
	var head int64
	if err := t.queryRow(ctx, qSearchHead).Scan(&head); err != nil {
		return nil, wrap("read search log", err)
	}
	if sl.ti != nil && !sl.ti.stale && head-sl.seq <= searchLogKeep {
		if head < sl.seq {
			return nil, nil
		}
		if head > sl.seq {
			if err := t.applySearchLog(ctx, sl.ti, tenant, sl.seq, head); err != nil {
				return nil, err
			}
			sl.seq = head
		}
	}
	// Not built, or stale, or further behind than the log keeps.
	if sl.ti == nil || sl.ti.stale || sl.seq != head {
		sl.building.Store(true)
		defer sl.building.Store(false)
		ti, err := t.buildTenantIndex(ctx, tenant)
		if err != nil {
			return nil, err
		}
		sl.ti, sl.seq = ti, head
	}
	return sl.ti, nil
}

// IndexSearch builds the search index of every tenant now rather than at
// its first search, which then does not wait (seconds at a million keys):
// keyward serve calls it in the background at start. It returns how many
// tenants and keys the index holds.
func (db *DB) IndexSearch(ctx context.Context) (tenants, keys int, err error) {
	var ids []string
	err = db.View(ctx, func(ktx keyward.Tx) error {
		rows, err := ktx.(*tx).query(ctx, qTenantIDs)
		if err != nil {
			return err
		}
		ids, err = collect(rows, "list tenants", func(row scanner) (string, error) {
			var id string
			return id, row.Scan(&id)
		})
		return err
	})
	if err != nil {
		return 0, 0, wrap("index search", err)
	}
	for _, id := range ids {
		sl := db.search.slot(id)
		err := db.View(ctx, func(ktx keyward.Tx) error {
			sl.mu.Lock()
			defer sl.mu.Unlock()
			ti, err := ktx.(*tx).syncSlot(ctx, sl, id)
			if ti != nil {
				tenants, keys = tenants+1, keys+ti.live()
			}
			return err
		})
		if err != nil {
			return tenants, keys, err
		}
	}
	return tenants, keys, nil
}

// applySearchLog brings a tenant's index from position from to head:
// each changed user, then each changed key, as it is now.
func (t *tx) applySearchLog(ctx context.Context, ti *tenantIndex, tenant string, from, head int64) error {
	rows, err := t.query(ctx, qSearchLog, from, head, tenant)
	if err != nil {
		return wrap("read search log", err)
	}
	type change struct {
		tbl string
		row int64
	}
	changes, err := collect(rows, "read search log", func(row scanner) (c change, err error) {
		return c, row.Scan(&c.tbl, &c.row)
	})
	if err != nil {
		return err
	}
	var users, keys []int64
	for _, c := range changes {
		if c.tbl == "user" {
			users = append(users, c.row)
		} else {
			keys = append(keys, c.row)
		}
	}
	if err := t.applyUsers(ctx, ti, tenant, users); err != nil {
		return err
	}
	return t.applyKeys(ctx, ti, tenant, keys)
}

// rowList is rowids as a JSON array, for json_each.
func rowList(rows []int64) string {
	b := make([]byte, 0, len(rows)*8+2)
	b = append(b, '[')
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, r, 10)
	}
	return string(append(b, ']'))
}

func (t *tx) applyUsers(ctx context.Context, ti *tenantIndex, tenant string, changed []int64) error {
	if len(changed) == 0 {
		return nil
	}
	present := map[int64]bool{}
	rows, err := t.query(ctx, qSearchUser, rowList(changed))
	if err != nil {
		return wrap("read changed users", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			row                             int64
			tenantID, id, name, email, kind string
		)
		if err := rows.Scan(&row, &tenantID, &id, &name, &email, &kind); err != nil {
			return wrap("read changed users", err)
		}
		if tenantID == tenant {
			present[row] = true
			ti.putUser(row, id, name, email, kind == keyward.KindSystem)
		}
	}
	if err := rows.Err(); err != nil {
		return wrap("read changed users", err)
	}
	for _, row := range changed {
		if !present[row] {
			ti.dropUser(row)
		}
	}
	return nil
}

func (t *tx) applyKeys(ctx context.Context, ti *tenantIndex, tenant string, changed []int64) error {
	if len(changed) == 0 {
		return nil
	}
	slices.Sort(changed) // new keys append in rowid order
	changed = slices.Compact(changed)
	type key struct {
		name, id, owner string
		created         int64
	}
	present := map[int64]key{}
	rows, err := t.query(ctx, qSearchKey, rowList(changed))
	if err != nil {
		return wrap("read changed keys", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			row      int64
			tenantID string
			k        key
		)
		if err := rows.Scan(&row, &tenantID, &k.name, &k.id, &k.owner, &k.created); err != nil {
			return wrap("read changed keys", err)
		}
		if tenantID == tenant {
			present[row] = k
		}
	}
	if err := rows.Err(); err != nil {
		return wrap("read changed keys", err)
	}
	for _, row := range changed {
		if k, ok := present[row]; ok {
			ti.putKey(row, k.name, k.id, k.owner, k.created)
		} else {
			ti.dropKey(row)
		}
	}
	return nil
}

// buildTenantIndex reads a tenant's users and keys into a new index.
func (t *tx) buildTenantIndex(ctx context.Context, tenant string) (*tenantIndex, error) {
	ti := newTenantIndex()
	rows, err := t.query(ctx, qIndexUsers, tenant)
	if err != nil {
		return nil, wrap("index users", err)
	}
	type user struct {
		row                   int64
		id, name, email, kind string
	}
	users, err := collect(rows, "index users", func(row scanner) (u user, err error) {
		return u, row.Scan(&u.row, &u.id, &u.name, &u.email, &u.kind)
	})
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		ti.putUser(u.row, u.id, u.name, u.email, u.kind == keyward.KindSystem)
	}

	// keys_search holds what the index needs but the creation times, in
	// name order: the texts go into the arena as they come, and the keys
	// become entries in rowid order after.
	type pending struct {
		row     int64
		created int64
		text    span
		owner   uint32
	}
	// Sized from the tenant's key count (kept by 00003_key_totals): grown by
	// appending, a million keys' arrays would be copied and faulted in anew
	// at every growth.
	var n int
	if err := t.queryRow(ctx, qIndexKeyCount, tenant).Scan(&n); err != nil {
		return nil, wrap("index keys", err)
	}
	keys := make([]pending, 0, n)
	ti.arena = make([]byte, 0, n*56)
	ti.rowids, ti.created = make([]int64, 0, n), make([]int64, 0, n)
	ti.spans, ti.owners, ti.flags = make([]span, 0, n), make([]uint32, 0, n), make([]uint8, 0, n)
	if rows, err = t.query(ctx, qIndexKeys, tenant); err != nil {
		return nil, wrap("index keys", err)
	}
	var name, id, owner sql.RawBytes
	for rows.Next() {
		var k pending
		if err := rows.Scan(&k.row, &name, &id, &owner); err != nil {
			rows.Close()
			return nil, wrap("index keys", err)
		}
		o, ok := ti.userByID[string(owner)]
		if !ok {
			continue // no owner (foreign keys were off): a search's JOIN leaves it out too
		}
		k.text, k.owner = putText(ti, name, id), o
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap("index keys", err)
	}
	slices.SortFunc(keys, func(a, b pending) int { return cmp.Compare(a.row, b.row) })
	// The texts again in entry order: searches read them in that order, and
	// a million texts strewn over the arena were five times slower to scan.
	arena := make([]byte, 0, cap(ti.arena))
	for i, k := range keys {
		keys[i].text.off = uint32(len(arena))
		arena = append(arena, ti.arena[k.text.off:k.text.off+k.text.n]...)
	}
	ti.arena = arena
	if rows, err = t.query(ctx, qIndexCreated, tenant); err != nil {
		return nil, wrap("index keys", err)
	}
	created, err := collect(rows, "index keys", func(row scanner) (rc [2]int64, err error) {
		return rc, row.Scan(&rc[0], &rc[1])
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(created, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	i := 0
	for _, k := range keys {
		for i < len(created) && created[i][0] < k.row {
			i++ // a key without an owner
		}
		if i == len(created) || created[i][0] != k.row {
			return nil, fmt.Errorf("sqlite: index keys of tenant %s: key rowid %d has no creation time", tenant, k.row)
		}
		ti.appendEntry(k.row, created[i][1], k.text, k.owner, false)
	}
	ti.addAllGrams()
	return ti, nil
}

// matchSets lends sets of rowids to SQL: kw_match(handle, rowid) tells
// whether the set of the handle holds the rowid. A handle lives as long as
// the statement that needs it.
var matchSets = &handles[[]int64]{}

type handles[T any] struct {
	next atomic.Int64
	m    sync.Map // int64 → T; read once a row by kw_match, so without a lock
}

func (h *handles[T]) add(v T) int64 {
	k := h.next.Add(1)
	h.m.Store(k, v)
	return k
}

func (h *handles[T]) remove(k int64) { h.m.Delete(k) }

func (h *handles[T]) get(k int64) (T, bool) {
	v, ok := h.m.Load(k)
	if !ok {
		var zero T
		return zero, false
	}
	return v.(T), true
}

func init() {
	sqlite.MustRegisterDeterministicScalarFunction("kw_match", 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		h, ok1 := args[0].(int64)
		row, ok2 := args[1].(int64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("kw_match(%v, %v): not a handle and a rowid", args[0], args[1])
		}
		set, ok := matchSets.get(h)
		if !ok {
			return nil, fmt.Errorf("kw_match(%d): no such set", h)
		}
		_, found := slices.BinarySearch(set, row)
		return found, nil
	})
}
