package sqlite

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strings"
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
// A tenantIndex is not safe for concurrent use: searchIndex serializes it.
type tenantIndex struct {
	rowids []int64  // entry → rowid, strictly ascending
	spans  []span   // entry → its text in arena
	owners []uint32 // entry → its owner in users
	flags  []uint8  // entry → entryLive, entrySystem
	arena  []byte   // the texts
	grams  map[uint32]*posting
	dirty  map[uint32]struct{} // entries whose posting lists are not their text's
	dead   int                 // entries marked dead

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
	text   string
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
	return &tenantIndex{grams: map[uint32]*posting{}, dirty: map[uint32]struct{}{},
		userByRow: map[int64]uint32{}, userByID: map[string]uint32{}}
}

// foldASCII appends s with its ASCII capitals made small, as LIKE compares.
func foldASCII(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func userText(name, email string) string {
	b := foldASCII(make([]byte, 0, len(name)+1+len(email)), name)
	b = append(b, 0)
	return string(foldASCII(b, email))
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
	lo, hi := 0, len(ti.rowids)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ti.rowids[m] < row {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(ti.rowids) && ti.rowids[lo] == row {
		return lo
	}
	return -1
}

// putKey adds or changes the key of a rowid. The owner must be put first;
// a key whose owner the index lacks marks the index stale.
func (ti *tenantIndex) putKey(row int64, name, id, ownerID string) {
	o, ok := ti.userByID[ownerID]
	if !ok {
		ti.stale = true
		return
	}
	var flags = entryLive
	if ti.users[o].system {
		flags |= entrySystem
	}
	off := len(ti.arena)
	ti.arena = foldASCII(ti.arena, name)
	ti.arena = append(ti.arena, 0)
	ti.arena = foldASCII(ti.arena, id)
	sp := span{uint32(off), uint32(len(ti.arena) - off)}

	if n := len(ti.rowids); n == 0 || row > ti.rowids[n-1] {
		e := uint32(n)
		ti.rowids = append(ti.rowids, row)
		ti.spans = append(ti.spans, sp)
		ti.owners = append(ti.owners, o)
		ti.flags = append(ti.flags, flags)
		ti.addGrams(e)
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
	ti.spans[e], ti.owners[e], ti.flags[e] = sp, o, flags
	ti.dirty[uint32(e)] = struct{}{}
	ti.checkWaste()
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
// (every search checks each dirty entry, and the arena keeps old texts).
func (ti *tenantIndex) checkWaste() {
	if n := len(ti.rowids); n >= 1024 && (ti.dead+len(ti.dirty))*4 > n {
		ti.stale = true
	}
}

func (ti *tenantIndex) text(e uint32) []byte {
	sp := ti.spans[e]
	return ti.arena[sp.off : sp.off+sp.n]
}

// addGrams puts entry e, the newest, in the posting list of each trigram of
// its text.
func (ti *tenantIndex) addGrams(e uint32) {
	t := ti.text(e)
	for i := 0; i+3 <= len(t); i++ {
		if t[i] == 0 || t[i+1] == 0 || t[i+2] == 0 {
			continue
		}
		g := uint32(t[i])<<16 | uint32(t[i+1])<<8 | uint32(t[i+2])
		p := ti.grams[g]
		if p == nil {
			p = &posting{}
			ti.grams[g] = p
		}
		if p.last == e+1 {
			continue // the text has this trigram twice
		}
		p.buf = binary.AppendUvarint(p.buf, uint64(e+1-p.last))
		p.last = e + 1
		p.n++
	}
}

// keyQuery is what a search asks of the index.
type keyQuery struct {
	q      []byte // folded; no NUL
	owner  string // "": every owner's keys
	system int    // 0: either kind; 1: system users' keys; -1: people's keys
}

// search returns the rowids of the live keys that match, ascending.
func (ti *tenantIndex) search(kq keyQuery) []int64 {
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

	if p := ti.shortestPosting(kq.q); p != nil || len(kq.q) < 3 {
		if p == nil { // too short for a trigram: every entry
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
	}
	// A renamed or revived entry's posting lists are its old text's.
	for e := range ti.dirty {
		if ok(e) && bytes.Contains(ti.text(e), kq.q) {
			mark(e)
		}
	}

	// Keys whose owner's name or email matches.
	var owners []uint64
	q := string(kq.q)
	for i, u := range ti.users {
		if u.live && strings.Contains(u.text, q) && (owner < 0 || i == owner) {
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

	var rows []int64
	for w, word := range hit {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			rows = append(rows, ti.rowids[w*64+b])
			word &= word - 1
		}
	}
	return rows
}

// shortestPosting is the shortest posting list of q's trigrams; nil when q
// is shorter than a trigram, and an empty list when one of its trigrams is
// in no text (only a dirty entry can match then).
func (ti *tenantIndex) shortestPosting(q []byte) *posting {
	if len(q) < 3 {
		return nil
	}
	var best *posting
	for i := 0; i+3 <= len(q); i++ {
		p := ti.grams[uint32(q[i])<<16|uint32(q[i+1])<<8|uint32(q[i+2])]
		if p == nil {
			return &posting{}
		}
		if best == nil || p.n < best.n {
			best = p
		}
	}
	return best
}
