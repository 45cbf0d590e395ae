package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

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

// searchIndex holds the substring indexes (tenantIndex) of the tenants that
// have been searched, as of one position of search_log: every search first
// reads the log from there and applies what changed, so that it sees every
// key committed before its read transaction began.
type searchIndex struct {
	mu      sync.Mutex
	seq     int64 // the search_log position the indexes reflect; -1: none yet
	tenants map[string]*tenantIndex
}

func newSearchIndex() *searchIndex {
	return &searchIndex{seq: -1, tenants: map[string]*tenantIndex{}}
}

var (
	qSearchHead = readQuery(`SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'search_log'), 0)`)
	qSearchLog  = readQuery(`SELECT tenant_id, tbl, row FROM search_log WHERE seq > ? AND seq <= ? ORDER BY seq`)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	ti, err := t.tenantIndex(ctx, s, f.TenantID)
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
	found = keysFound{total: len(entries), of: len(ti.rowids) - ti.dead}
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

// tenantIndex is the index of a tenant brought up to date with the log, or
// nil when this transaction cannot build it. s.mu is held.
func (t *tx) tenantIndex(ctx context.Context, s *searchIndex, tenant string) (*tenantIndex, error) {
	var head int64
	if err := t.queryRow(ctx, qSearchHead).Scan(&head); err != nil {
		return nil, wrap("read search log", err)
	}
	switch {
	case s.seq < 0 || head-s.seq > searchLogKeep:
		// Nothing built yet, or the log no longer holds what changed since.
		s.tenants = map[string]*tenantIndex{}
		s.seq = head
	case head > s.seq:
		if err := t.applySearchLog(ctx, s, head); err != nil {
			return nil, err
		}
		s.seq = head
	}
	ti := s.tenants[tenant]
	if ti == nil || ti.stale {
		if head != s.seq {
			// This transaction began before the index's position: an index
			// built from its snapshot would miss the changes in between.
			return nil, nil
		}
		var err error
		if ti, err = t.buildTenantIndex(ctx, tenant); err != nil {
			return nil, err
		}
		s.tenants[tenant] = ti
	}
	return ti, nil
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
		err := db.View(ctx, func(ktx keyward.Tx) error {
			db.search.mu.Lock()
			defer db.search.mu.Unlock()
			ti, err := ktx.(*tx).tenantIndex(ctx, db.search, id)
			if ti != nil {
				tenants, keys = tenants+1, keys+len(ti.rowids)-ti.dead
			}
			return err
		})
		if err != nil {
			return tenants, keys, err
		}
	}
	return tenants, keys, nil
}

// applySearchLog brings the built tenants' indexes from s.seq to head: each
// changed user, then each changed key, as it is now.
func (t *tx) applySearchLog(ctx context.Context, s *searchIndex, head int64) error {
	type changed struct{ users, keys []int64 }
	byTenant := map[string]*changed{}
	rows, err := t.query(ctx, qSearchLog, s.seq, head)
	if err != nil {
		return wrap("read search log", err)
	}
	for rows.Next() {
		var (
			tenant, tbl string
			row         int64
		)
		if err := rows.Scan(&tenant, &tbl, &row); err != nil {
			rows.Close()
			return wrap("read search log", err)
		}
		if ti := s.tenants[tenant]; ti == nil || ti.stale {
			continue // rebuilt when next searched
		}
		c := byTenant[tenant]
		if c == nil {
			c = &changed{}
			byTenant[tenant] = c
		}
		if tbl == "user" {
			c.users = append(c.users, row)
		} else {
			c.keys = append(c.keys, row)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrap("read search log", err)
	}
	for tenant, c := range byTenant {
		ti := s.tenants[tenant]
		if err := t.applyUsers(ctx, ti, tenant, c.users); err != nil {
			return err
		}
		if err := t.applyKeys(ctx, ti, tenant, c.keys); err != nil {
			return err
		}
	}
	return nil
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
	for rows.Next() {
		var (
			row                   int64
			id, name, email, kind string
		)
		if err := rows.Scan(&row, &id, &name, &email, &kind); err != nil {
			rows.Close()
			return nil, wrap("index users", err)
		}
		ti.putUser(row, id, name, email, kind == keyward.KindSystem)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap("index users", err)
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
			rows.Close()
			return nil, fmt.Errorf("sqlite: index keys of tenant %s: key %s has no owner", tenant, id)
		}
		k.text, k.owner = putText(ti, name, id), o
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap("index keys", err)
	}
	slices.SortFunc(keys, func(a, b pending) int { return cmpInt(a.row, b.row) })
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
	created := make([][2]int64, 0, n)
	for rows.Next() {
		var rc [2]int64
		if err := rows.Scan(&rc[0], &rc[1]); err != nil {
			rows.Close()
			return nil, wrap("index keys", err)
		}
		created = append(created, rc)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap("index keys", err)
	}
	slices.SortFunc(created, func(a, b [2]int64) int { return cmpInt(a[0], b[0]) })
	if len(created) != len(keys) {
		return nil, fmt.Errorf("sqlite: index keys of tenant %s: %d keys by name, %d by creation", tenant, len(keys), len(created))
	}
	for i, k := range keys {
		if created[i][0] != k.row {
			return nil, fmt.Errorf("sqlite: index keys of tenant %s: rowid %d by name, %d by creation", tenant, k.row, created[i][0])
		}
		ti.appendEntry(k.row, created[i][1], k.text, k.owner, false)
	}
	ti.addAllGrams()
	return ti, nil
}

// matchSets lends sets of rowids to SQL: kw_match(handle, rowid) tells
// whether the set of the handle holds the rowid. A handle lives as long as
// the statement that needs it.
var matchSets = &handles[[]int64]{m: map[int64][]int64{}}

type handles[T any] struct {
	mu   sync.Mutex
	next int64
	m    map[int64]T
}

func (h *handles[T]) add(v T) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	h.m[h.next] = v
	return h.next
}

func (h *handles[T]) remove(k int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, k)
}

func (h *handles[T]) get(k int64) (T, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.m[k]
	return v, ok
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
