package sqlite

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"iter"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// tenantIndex finds one tenant's keys by a fragment of their name, their ID
// or their owner's name or email, as the contract's q does: a substring,
// with ASCII letters compared without case (the rule of SQLite's LIKE, which
// the SQL search uses for an ASCII fragment).
//
// A key is an entry: its rowid, its text (its name and ID, folded, with a
// NUL between them so that no fragment spans both), its owner and its
// owner's kind. Entries are numbered in rowid order. For every trigram (three
// consecutive bytes) of a text, a posting list holds the entries whose text
// has it, as varint deltas. A fragment of three bytes or more reads the
// shortest list of its trigrams and checks each entry's text; a shorter one
// checks every entry. Owners are few beside keys and are checked one by one.
//
// The index changes in place: a new key with a rowid above every entry's is
// appended; a deleted key's entry is marked dead; a renamed key's text moves
// and its entry goes into dirty, checked by every search, because its posting
// lists still hold the old text's trigrams. An insert below the last rowid
// (SQLite reuses a deleted largest rowid) revives that rowid's entry the same
// way, or, where the index never had that rowid, marks the whole index stale,
// to be rebuilt. So do too many dirty or dead entries.
//
// A tenantIndex is not safe for concurrent use: its searchSlot's lock
// serializes it.
type tenantIndex struct {
	rowids  []int64  // entry → rowid, strictly ascending
	created []int64  // entry → created_at, which never changes
	spans   []span   // entry → its text in arena
	owners  []uint32 // entry → its owner in users
	flags   []uint8  // entry → entryLive, entrySystem
	arena   []byte   // the texts
	grams   [gramParts]map[uint32]*posting
	dirty   map[uint32]struct{} // entries whose posting lists are not their text's
	dead    int                 // entries marked dead
	wasted  int                 // bytes of the arena no entry points at any more

	users     []indexedUser
	userByRow map[int64]uint32
	userByID  map[string]uint32

	stale bool // rebuild before the next search
}

type span struct{ off, n uint32 }

const (
	entryLive uint8 = 1 << iota
	entrySystem
)

// indexedUser is an owner: its folded "name NUL email" and kind.
type indexedUser struct {
	id     string
	text   []byte
	system bool
	live   bool
}

// posting lists the entries that hold one trigram: varint deltas of
// entry+1, ascending.
type posting struct {
	buf  []byte
	last uint32 // the last entry added, plus one
	n    int
}

func newTenantIndex() *tenantIndex {
	ti := &tenantIndex{dirty: map[uint32]struct{}{}, userByRow: map[int64]uint32{}, userByID: map[string]uint32{}}
	for k := range ti.grams {
		ti.grams[k] = map[uint32]*posting{}
	}
	return ti
}

// foldASCII appends s with its ASCII capitals made small, as LIKE compares.
func foldASCII[T ~string | ~[]byte](dst []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func userText(name, email string) []byte {
	b := foldASCII(make([]byte, 0, len(name)+1+len(email)), name)
	b = append(b, 0)
	return foldASCII(b, email)
}

// putUser adds or changes the user of a rowid.
func (ti *tenantIndex) putUser(row int64, id, name, email string, system bool) {
	u := indexedUser{id: id, text: userText(name, email), system: system, live: true}
	if i, ok := ti.userByRow[row]; ok && ti.users[i].id == id {
		if ti.users[i].system != system {
			ti.stale = true // its keys' entries hold the old kind
		}
		ti.users[i] = u
		return
	}
	ti.dropUser(row)
	ti.userByRow[row] = uint32(len(ti.users))
	ti.userByID[id] = uint32(len(ti.users))
	ti.users = append(ti.users, u)
}

// dropUser forgets the user of a rowid. Its keys are gone with it (the
// foreign key cascades), and the log says so one by one.
func (ti *tenantIndex) dropUser(row int64) {
	i, ok := ti.userByRow[row]
	if !ok {
		return
	}
	ti.users[i].live = false
	delete(ti.userByRow, row)
	if j, ok := ti.userByID[ti.users[i].id]; ok && j == i {
		delete(ti.userByID, ti.users[i].id)
	}
}

// find is the entry of a rowid, or -1.
func (ti *tenantIndex) find(row int64) int {
	if e, ok := slices.BinarySearch(ti.rowids, row); ok {
		return e
	}
	return -1
}

// live is the number of live entries: the tenant's keys.
func (ti *tenantIndex) live() int { return len(ti.rowids) - ti.dead }

// putKey adds or changes the key of a rowid. The owner must be put first;
// a key whose owner the index lacks is dropped, as a search's JOIN drops it.
func (ti *tenantIndex) putKey(row int64, name, id, ownerID string, created int64) {
	o, ok := ti.userByID[ownerID]
	if !ok {
		ti.dropKey(row) // no owner (foreign keys were off): a search's JOIN leaves it out too
		return
	}
	sp := putText(ti, name, id)
	if n := len(ti.rowids); n == 0 || row > ti.rowids[n-1] {
		ti.appendEntry(row, created, sp, o, true)
		return
	}
	e := ti.find(row)
	if e < 0 {
		ti.stale = true
		return
	}
	if ti.flags[e]&entryLive == 0 {
		ti.dead--
	}
	ti.wasted += int(ti.spans[e].n)
	flags := entryLive
	if ti.users[o].system {
		flags |= entrySystem
	}
	ti.spans[e], ti.owners[e], ti.flags[e], ti.created[e] = sp, o, flags, created
	ti.dirty[uint32(e)] = struct{}{}
	ti.checkWaste()
}

// putText adds a key's text to the arena.
func putText[T ~string | ~[]byte](ti *tenantIndex, name, id T) span {
	off := len(ti.arena)
	ti.arena = foldASCII(ti.arena, name)
	ti.arena = append(ti.arena, 0)
	ti.arena = foldASCII(ti.arena, id)
	return span{uint32(off), uint32(len(ti.arena) - off)}
}

// appendEntry adds a key whose rowid is above every entry's, with its text
// at sp in the arena and its owner o, and its trigrams unless a build will
// add every entry's at once (addAllGrams).
func (ti *tenantIndex) appendEntry(row, created int64, sp span, o uint32, grams bool) {
	flags := entryLive
	if ti.users[o].system {
		flags |= entrySystem
	}
	ti.rowids = append(ti.rowids, row)
	ti.created = append(ti.created, created)
	ti.spans = append(ti.spans, sp)
	ti.owners = append(ti.owners, o)
	ti.flags = append(ti.flags, flags)
	if grams {
		ti.addGrams(uint32(len(ti.rowids) - 1))
	}
}

// addAllGrams fills the posting lists of a new index from its entries. A
// chunk of entries at a time, their trigrams are sorted into the parts
// (gramPart), then each part's lists take theirs, a part per core.
func (ti *tenantIndex) addAllGrams() {
	const chunk = 1 << 15
	var buckets [gramParts][]uint64 // trigram<<32 | entry
	n := uint32(len(ti.rowids))
	for start := uint32(0); start < n; start += chunk {
		for k := range buckets {
			buckets[k] = buckets[k][:0]
		}
		for e := start; e < min(n, start+chunk); e++ {
			for g := range trigrams(ti.text(e)) {
				k := gramPart(g)
				buckets[k] = append(buckets[k], uint64(g)<<32|uint64(e))
			}
		}
		var next atomic.Int32
		var wg sync.WaitGroup
		for range min(runtime.GOMAXPROCS(0), gramParts) {
			wg.Go(func() {
				for k := int(next.Add(1) - 1); k < gramParts; k = int(next.Add(1) - 1) {
					m := ti.grams[k]
					for _, ge := range buckets[k] {
						g, e := uint32(ge>>32), uint32(ge)
						p := m[g]
						if p == nil {
							p = &posting{}
							m[g] = p
						}
						p.add(e)
					}
				}
			})
		}
		wg.Wait()
	}
	for k := range ti.grams {
		for _, p := range ti.grams[k] {
			p.buf = slices.Clip(slices.Clone(p.buf))
		}
	}
}

// dropKey marks the key of a rowid dead.
func (ti *tenantIndex) dropKey(row int64) {
	e := ti.find(row)
	if e < 0 || ti.flags[e]&entryLive == 0 {
		return
	}
	ti.flags[e] &^= entryLive
	ti.dead++
	ti.checkWaste()
}

// checkWaste marks the index stale once a quarter of it is dead or dirty
// (every search checks each dirty entry), once half the arena is old texts,
// or before the arena outgrows its 32-bit offsets.
func (ti *tenantIndex) checkWaste() {
	n := len(ti.rowids)
	if n >= 1024 && (ti.dead+len(ti.dirty))*4 > n || len(ti.arena) >= 1<<16 && ti.wasted*2 > len(ti.arena) ||
		len(ti.arena) >= 1<<31 {
		ti.stale = true
	}
}

func (ti *tenantIndex) text(e uint32) []byte {
	sp := ti.spans[e]
	return ti.arena[sp.off : sp.off+sp.n]
}

// gramParts splits the posting lists by trigram, so that a build fills them
// a part at a time, each part's lists small enough to stay in a core's cache
// (all of them at once do not: such a build mostly waited on memory), and
// the parts in parallel.
const gramParts = 8

// trigrams yields the trigrams of a text, three bytes in an integer, but
// those that span its NUL (a fragment never does).
func trigrams(t []byte) iter.Seq[uint32] {
	return func(yield func(uint32) bool) {
		for i := 0; i+3 <= len(t); i++ {
			if t[i] == 0 || t[i+1] == 0 || t[i+2] == 0 {
				continue
			}
			if !yield(uint32(t[i])<<16 | uint32(t[i+1])<<8 | uint32(t[i+2])) {
				return
			}
		}
	}
}

// gramPart is the part of trigram g: the top bits of a multiplicative hash.
func gramPart(g uint32) uint32 { return (g * 0x9E3779B1) >> 29 }

func (ti *tenantIndex) posting(g uint32) *posting { return ti.grams[gramPart(g)][g] }

// addGrams puts entry e, the newest, in the posting list of each trigram of
// its text.
func (ti *tenantIndex) addGrams(e uint32) {
	for g := range trigrams(ti.text(e)) {
		k := gramPart(g)
		p := ti.grams[k][g]
		if p == nil {
			p = &posting{}
			ti.grams[k][g] = p
		}
		p.add(e)
	}
}

// add puts entry e in the list, unless it is its last already (a text with
// a trigram twice); entries come in ascending order.
func (p *posting) add(e uint32) {
	if p.last == e+1 {
		return
	}
	p.buf = binary.AppendUvarint(p.buf, uint64(e+1-p.last))
	p.last = e + 1
	p.n++
}

// keyQuery is what a search asks of the index.
type keyQuery struct {
	q      []byte // folded; no NUL
	owner  string // "": every owner's keys
	system int    // 0: either kind; 1: system users' keys; -1: people's keys
}

// search returns the live keys that match, ascending.
func (ti *tenantIndex) search(kq keyQuery) []uint32 {
	owner := -1
	if kq.owner != "" {
		o, ok := ti.userByID[kq.owner]
		if !ok || !ti.users[o].live {
			return nil
		}
		owner = int(o)
	}
	n := len(ti.rowids)
	hit := make([]uint64, (n+63)/64)
	ok := func(e uint32) bool {
		f := ti.flags[e]
		if f&entryLive == 0 || (owner >= 0 && ti.owners[e] != uint32(owner)) {
			return false
		}
		switch kq.system {
		case 1:
			return f&entrySystem != 0
		case -1:
			return f&entrySystem == 0
		}
		return true
	}
	mark := func(e uint32) { hit[e/64] |= 1 << (e % 64) }

	if p := ti.shortestPosting(kq.q); p == nil { // too short for a trigram: every entry
		for e := range uint32(n) {
			if ok(e) && bytes.Contains(ti.text(e), kq.q) {
				mark(e)
			}
		}
	} else {
		var e uint32
		for buf := p.buf; len(buf) > 0; {
			d, w := binary.Uvarint(buf)
			buf = buf[w:]
			e += uint32(d)
			if _, dirty := ti.dirty[e-1]; !dirty && ok(e-1) && bytes.Contains(ti.text(e-1), kq.q) {
				mark(e - 1)
			}
		}
	}
	// A renamed or revived entry's posting lists are its old text's.
	for e := range ti.dirty {
		if ok(e) && bytes.Contains(ti.text(e), kq.q) {
			mark(e)
		}
	}

	// Keys whose owner's name or email matches.
	var owners []uint64
	for i, u := range ti.users {
		if u.live && bytes.Contains(u.text, kq.q) && (owner < 0 || i == owner) {
			if owners == nil {
				owners = make([]uint64, (len(ti.users)+63)/64)
			}
			owners[i/64] |= 1 << (i % 64)
		}
	}
	if owners != nil {
		for e, o := range ti.owners {
			if owners[o/64]&(1<<(o%64)) != 0 && ok(uint32(e)) {
				mark(uint32(e))
			}
		}
	}

	var found []uint32
	for w, word := range hit {
		for word != 0 {
			found = append(found, uint32(w*64+bits.TrailingZeros64(word)))
			word &= word - 1
		}
	}
	return found
}

// rows is the rowids of entries, in their order.
func (ti *tenantIndex) rows(entries []uint32) []int64 {
	rows := make([]int64, len(entries))
	for i, e := range entries {
		rows[i] = ti.rowids[e]
	}
	return rows
}

// pageOrder is a sort of the contract that the index can order keys by
// exactly as SQL does: created_at, or name, ID or owner's name compared as
// COLLATE NOCASE does (ASCII letters folded, then byte by byte, a prefix
// first), which is how the index folds its texts.
type pageOrder struct {
	column string // created_at, name, id or owner
	desc   bool
	// after: the page token's sort value (folded, for text), if any.
	after     bool
	afterTime int64
	afterText []byte
	size      int // the page's rows, plus one that tells whether more follow
}

// indexedOrder tells whether the index orders by a sort column exactly.
func indexedOrder(column string) bool {
	switch column {
	case "created_at", "name", "id", "owner":
		return true
	}
	return false
}

func (ti *tenantIndex) nameText(e uint32) []byte {
	t := ti.text(e)
	return t[:bytes.IndexByte(t, 0)]
}

func (ti *tenantIndex) idText(e uint32) []byte {
	t := ti.text(e)
	return t[bytes.IndexByte(t, 0)+1:]
}

func (ti *tenantIndex) ownerText(e uint32) []byte {
	t := ti.users[ti.owners[e]].text
	return t[:bytes.IndexByte(t, 0)]
}

// candidates narrows found to the keys that can be on the page of o: those
// of the page token's sort value, and of those past it the o.size first in
// o's order with every key that ties with the last of them. SQL then orders
// the candidates and applies the page token exactly (a tie is ordered by
// ID): the index never decides a key's place, only which keys cannot be on
// the page. The candidates come in no particular order.
func (ti *tenantIndex) candidates(found []uint32, o pageOrder) []uint32 {
	var order func(a, b uint32) int // a against b, ascending
	var cmpAfter func(e uint32) int // e against the page token's value
	switch o.column {
	case "created_at":
		order = func(a, b uint32) int { return cmp.Compare(ti.created[a], ti.created[b]) }
		cmpAfter = func(e uint32) int { return cmp.Compare(ti.created[e], o.afterTime) }
	default:
		text := ti.nameText
		switch o.column {
		case "id":
			text = ti.idText
		case "owner":
			text = ti.ownerText
		}
		order = func(a, b uint32) int { return bytes.Compare(text(a), text(b)) }
		cmpAfter = func(e uint32) int { return bytes.Compare(text(e), o.afterText) }
	}
	if o.desc {
		asc, ascAfter := order, cmpAfter
		order = func(a, b uint32) int { return asc(b, a) }
		cmpAfter = func(e uint32) int { return -ascAfter(e) }
	}
	// The keys of the page token's value itself are all candidates (SQL
	// keeps those past its ID); the o.size first are chosen from the rest.
	kept, out := found, []uint32(nil)
	if o.after {
		kept = make([]uint32, 0, len(found))
		for _, e := range found {
			switch c := cmpAfter(e); {
			case c > 0:
				kept = append(kept, e)
			case c == 0:
				out = append(out, e)
			}
		}
	}
	if len(kept) <= o.size {
		return append(out, kept...)
	}
	// The o.size first, in a heap whose top is the last of them.
	h := make([]uint32, 0, o.size)
	down := func(i int) {
		for {
			l, worst := 2*i+1, i
			if l < len(h) && order(h[l], h[worst]) > 0 {
				worst = l
			}
			if r := l + 1; r < len(h) && order(h[r], h[worst]) > 0 {
				worst = r
			}
			if worst == i {
				return
			}
			h[i], h[worst] = h[worst], h[i]
			i = worst
		}
	}
	for _, e := range kept {
		switch {
		case len(h) < o.size:
			h = append(h, e)
			for i := len(h) - 1; i > 0 && order(h[i], h[(i-1)/2]) > 0; i = (i - 1) / 2 {
				h[i], h[(i-1)/2] = h[(i-1)/2], h[i]
			}
		case order(e, h[0]) < 0:
			h[0] = e
			down(0)
		}
	}
	last := h[0]
	for _, e := range kept {
		if order(e, last) <= 0 {
			out = append(out, e)
		}
	}
	return out
}

// shortestPosting is the shortest posting list of q's trigrams; nil when q
// is shorter than a trigram, and an empty list when one of its trigrams is
// in no text (only a dirty entry can match then).
func (ti *tenantIndex) shortestPosting(q []byte) *posting {
	if len(q) < 3 {
		return nil
	}
	var best *posting
	for g := range trigrams(q) {
		p := ti.posting(g)
		if p == nil {
			return &posting{}
		}
		if best == nil || p.n < best.n {
			best = p
		}
	}
	return best
}
