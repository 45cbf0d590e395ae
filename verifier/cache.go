// Package verifier keeps verification off the database: a node-local cache
// of keys by the digest of their secret, in front of the store. The rules of
// verification stay in package keyward (Service.Verify, Judge); this package
// only answers "which key, and what are its tenant's settings", fast.
//
// Correctness under concurrency rests on one generation counter: every
// invalidation bumps it, and a fill that started before an invalidation is
// not installed. So a fill racing a revocation can never put "active" back.
//
// Memory: a cached key is one allocation that holds the key, its digest and
// the cache's bookkeeping, plus its own strings (ID, name, start); the
// strings that many keys share (tenant, owner, role, type, empty scopes and
// meta) are shared. Answers of "no such key" are kept apart, in a bounded
// table, so that a flood of made-up keys cannot grow the cache without end.
package verifier

import (
	"context"
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/keyward/keyward"
)

// Defaults for Options.
const (
	DefaultMaxAge      = time.Minute
	DefaultNegativeTTL = 5 * time.Second
	// DefaultMaxNegative bounds the remembered "no such key" answers.
	DefaultMaxNegative = 100_000
	shardCount         = 64
	// maxInterned bounds the table of shared strings; it starts over when full.
	maxInterned = 1 << 16
)

// Options tune the cache.
type Options struct {
	// MaxAge bounds how long a found key is served from memory without a
	// reread; a second net behind invalidation.
	MaxAge time.Duration
	// NegativeTTL is how long "no such key" is remembered, so that floods of
	// well-formed unknown keys do not all reach the store.
	NegativeTTL time.Duration
	// MaxNegative bounds how many "no such key" answers are remembered at
	// once; beyond it, expired ones are dropped and new ones not kept.
	MaxNegative int
}

// Cache resolves key digests through memory, filling misses from the store.
// It implements keyward.Resolver and consumes keyward.Change.
type Cache struct {
	store  keyward.Store
	maxAge int64 // nanoseconds
	negTTL int64
	maxNeg int // per shard

	gen atomic.Uint64
	// suspended: changes may go unheard (a lost notification connection),
	// so nothing is answered from memory and no fill is kept.
	suspended atomic.Bool
	shards    [shardCount]shard
	tenMu     sync.Mutex
	tenants   map[string]*tenantState

	internMu sync.Mutex
	interned map[string]string
	arena    []byte // where interned strings are copied, see intern
}

type shard struct {
	mu sync.RWMutex
	// keys holds found keys by digest.
	keys table
	// absent holds "no such key" answers: when each was learned.
	absent    map[[32]byte]int64
	lastSweep int64
	// Counted per shard: one counter for all would bounce between cores.
	hits, misses atomic.Uint64
	_            [40]byte // a shard to a cache line pair of its own
}

// entry is one cached key: a copy of the store's key whose Hash points at
// digest and whose own strings (ID, start, name, description) point into
// text when they fit, so that the whole answer is a single allocation. The
// cache alone allocates entries, in a size class of their own, so that the
// spans that hold them are not strewn with the garbage of fills.
type entry struct {
	key    keyward.Key
	digest [32]byte
	tenant *tenantState
	filled int64 // nanoseconds since Cache.start
	text   [entryText]byte
}

// entryText makes an entry 448 bytes, a size class of its own; an ID and a
// start take 33 bytes of it, which leaves 31 for the name and description.
const entryText = 64

// tenantState is a tenant's settings as the cache last read them. A change of
// settings marks it stale; entries that point at it are then misses.
type tenantState struct {
	settings keyward.Settings
	stale    atomic.Bool
}

var errNotFound = keyward.Errorf(keyward.ENotFound, "key not found")

// New makes an empty cache over store.
func New(store keyward.Store, opts Options) *Cache {
	c := &Cache{store: store, maxAge: int64(opts.MaxAge), negTTL: int64(opts.NegativeTTL),
		tenants: map[string]*tenantState{}, interned: map[string]string{}}
	if c.maxAge <= 0 {
		c.maxAge = int64(DefaultMaxAge)
	}
	if c.negTTL <= 0 {
		c.negTTL = int64(DefaultNegativeTTL)
	}
	maxNeg := opts.MaxNegative
	if maxNeg <= 0 {
		maxNeg = DefaultMaxNegative
	}
	c.maxNeg = max(1, maxNeg/shardCount)
	for i := range c.shards {
		// "Never swept" must be earlier than any time a caller gives (an
		// injected clock may stand anywhere).
		c.shards[i].absent, c.shards[i].lastSweep = map[[32]byte]int64{}, math.MinInt64/2
	}
	return c
}

func (c *Cache) shardOf(d *[32]byte) *shard { return &c.shards[d[0]%shardCount] }

// clock is the cache's time scale: the callers' wall clock in Unix
// nanoseconds, whether or not their time carries a monotonic reading (the
// service passes both kinds), so that every age is measured on one scale.
// A wall clock may step: see fresh.
func (c *Cache) clock(now time.Time) int64 { return now.UnixNano() }

// fresh reports whether something noted at since is younger than ttl at
// now. An age below zero (the wall clock stepped back, or a caller's clock
// stands behind the one that noted it) is not fresh: memory is then asked
// to prove nothing, and the store answers.
func fresh(now, since, ttl int64) bool {
	age := now - since
	return age >= 0 && age < ttl
}

// Cached answers from memory alone: ok is false when only the store can
// tell. A nil key with ok means "no such key", remembered. now is the
// caller's clock: the service reads it once per verification, and the cache
// measures ages on it. It does not allocate.
func (c *Cache) Cached(d [32]byte, now time.Time) (*keyward.Key, *keyward.Settings, bool) {
	if c.suspended.Load() {
		return nil, nil, false
	}
	sh := c.shardOf(&d)
	at := c.clock(now)
	sh.mu.RLock()
	e := sh.keys.get(&d)
	var absentSince int64
	var absent bool
	if e == nil {
		absentSince, absent = sh.absent[d]
	}
	sh.mu.RUnlock()
	if e != nil && fresh(at, e.filled, c.maxAge) && !e.tenant.stale.Load() {
		sh.hits.Add(1)
		return &e.key, &e.tenant.settings, true
	}
	if absent && fresh(at, absentSince, c.negTTL) {
		sh.hits.Add(1)
		return nil, nil, true
	}
	return nil, nil, false
}

// Resolve returns the key whose secret has digest d and its tenant's
// settings, from memory when it can, else from the store. The returned key
// and settings are shared snapshots: callers must not modify them.
func (c *Cache) Resolve(ctx context.Context, d [32]byte, now time.Time) (*keyward.Key, *keyward.Settings, error) {
	k, set, ok := c.Cached(d, now)
	if ok {
		if k == nil {
			return nil, nil, errNotFound
		}
		return k, set, nil
	}
	sh := c.shardOf(&d)
	sh.misses.Add(1)
	return c.fill(ctx, sh, d, c.clock(now))
}

// fill reads the key and its tenant from the store and installs the result,
// unless an invalidation happened since the fill began.
func (c *Cache) fill(ctx context.Context, sh *shard, d [32]byte, now int64) (*keyward.Key, *keyward.Settings, error) {
	g := c.gen.Load()
	k, set, err := c.store.KeyForVerify(ctx, d[:])
	if keyward.IsCode(err, keyward.ENotFound) {
		sh.mu.Lock()
		if c.keeps(g) {
			c.remember(sh, d, now)
		}
		sh.mu.Unlock()
		return nil, nil, errNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	ts := c.tenantState(k.TenantID, set, g)
	if len(k.Hash) != len(d) || [32]byte(k.Hash) != d {
		// Not the key asked for: answer it uncached, and let the service's
		// comparison of the digests refuse it.
		return k, &ts.settings, nil
	}
	e := c.newEntry(k, d, ts, now)
	sh.mu.Lock()
	if c.keeps(g) {
		sh.keys.put(e)
		delete(sh.absent, d)
	}
	sh.mu.Unlock()
	return &e.key, &ts.settings, nil
}

// remember notes that no key has digest d, unless the shard's table of such
// answers is full even after dropping the expired ones. Called with sh.mu held.
func (c *Cache) remember(sh *shard, d [32]byte, now int64) {
	sh.keys.remove(&d) // the key is gone
	if len(sh.absent) >= c.maxNeg {
		if now-sh.lastSweep < c.negTTL/8 {
			return
		}
		sh.lastSweep = now
		for k, at := range sh.absent {
			if !fresh(now, at, c.negTTL) {
				delete(sh.absent, k)
			}
		}
		if len(sh.absent) >= c.maxNeg {
			return
		}
	}
	sh.absent[d] = now
}

// newEntry copies k for the cache: its own strings into the entry's text,
// and the strings and empty lists that many keys have in common shared.
func (c *Cache) newEntry(k *keyward.Key, d [32]byte, ts *tenantState, now int64) *entry {
	e := &entry{key: *k, digest: d, tenant: ts, filled: now}
	v := &e.key
	v.Hash = e.digest[:]
	var text []byte
	if n := len(k.ID) + len(k.Start) + len(k.Name) + len(k.Description); n <= len(e.text) {
		text = e.text[:0:n]
	} else {
		text = make([]byte, 0, n)
	}
	v.ID, text = place(text, k.ID)
	v.Start, text = place(text, k.Start)
	v.Name, text = place(text, k.Name)
	v.Description, _ = place(text, k.Description)
	v.Role = constant(v.Role, keyward.KeyRoleAdmin, keyward.KeyRoleReadonly)
	v.Type = constant(v.Type, keyward.KindUser, keyward.KindSystem)
	if len(v.Scopes) == 0 {
		v.Scopes = noScopes
	}
	if string(v.Meta) == "{}" {
		v.Meta = emptyMeta
	}
	c.internMu.Lock()
	if len(c.interned) >= maxInterned {
		c.interned, c.arena = map[string]string{}, nil
	}
	v.TenantID = c.intern(v.TenantID)
	v.OwnerID = c.intern(v.OwnerID)
	v.OwnerName = c.intern(v.OwnerName)
	v.OwnerEmail = c.intern(v.OwnerEmail)
	c.internMu.Unlock()
	return e
}

// place appends s to text, whose capacity it must fit, and returns the
// appended copy as a string. Bytes once placed are never written again.
func place(text []byte, s string) (string, []byte) {
	if s == "" {
		return "", text
	}
	n := len(text)
	text = append(text, s...)
	return unsafe.String(&text[n], len(s)), text
}

var (
	noScopes  = []string{}
	emptyMeta = []byte("{}")
)

// constant returns the constant equal to s, if any, so that s's own copy is
// not kept.
func constant(s string, consts ...string) string {
	for _, k := range consts {
		if s == k {
			return k
		}
	}
	return s
}

// intern returns the shared copy of s. Copies are packed into chunks of
// their own: a string kept from the store's row would pin a whole span of
// the fill's garbage. Called with internMu held.
func (c *Cache) intern(s string) string {
	if v, ok := c.interned[s]; ok || s == "" {
		return v
	}
	if len(s) > cap(c.arena)-len(c.arena) {
		c.arena = make([]byte, 0, max(internChunk, len(s)))
	}
	v, arena := place(c.arena, s)
	c.arena = arena
	c.interned[v] = v
	return v
}

// internChunk is the size of the chunks interned strings are packed into.
const internChunk = 16 << 10

// keeps reports whether what a fill that began at generation g read may be
// kept: no invalidation since, and the cache not suspended.
func (c *Cache) keeps(g uint64) bool { return c.gen.Load() == g && !c.suspended.Load() }

// tenantState shares one settings snapshot among a tenant's entries. A
// snapshot read before the latest invalidation is never shared.
func (c *Cache) tenantState(tenantID string, set *keyward.Settings, g uint64) *tenantState {
	c.tenMu.Lock()
	defer c.tenMu.Unlock()
	ts := c.tenants[tenantID]
	if ts != nil && !ts.stale.Load() {
		return ts
	}
	ts = &tenantState{settings: *set}
	if c.keeps(g) {
		c.tenants[tenantID] = ts
	} else {
		ts.stale.Store(true) // usable for this one answer, never cached
	}
	return ts
}

// Invalidate drops what a committed change made stale: the named keys, and
// every key of a tenant whose settings changed. Call it after commit.
func (c *Cache) Invalidate(ch keyward.Change) {
	c.gen.Add(1)
	if ch.TenantID != "" {
		c.tenMu.Lock()
		if ts := c.tenants[ch.TenantID]; ts != nil {
			ts.stale.Store(true)
			delete(c.tenants, ch.TenantID)
		}
		c.tenMu.Unlock()
	}
	for _, h := range ch.KeyHashes {
		if len(h) != 32 {
			continue
		}
		d := [32]byte(h)
		sh := c.shardOf(&d)
		sh.mu.Lock()
		c.gen.Add(1)
		sh.keys.remove(&d)
		delete(sh.absent, d)
		sh.mu.Unlock()
	}
}

// Suspend stops answering from memory, and drops what memory holds, until
// Resume: for a node that can no longer trust that it hears of every change
// (its notification connection is lost). Every verification then reads the
// store: slower, never stale.
func (c *Cache) Suspend() {
	c.suspended.Store(true)
	c.Purge()
}

// Suspended reports whether the cache is suspended.
func (c *Cache) Suspended() bool { return c.suspended.Load() }

// Resume drops what memory holds (changes may have been missed while
// suspended) and answers from memory again.
func (c *Cache) Resume() {
	c.Purge() // a fill that began before this is not kept: Purge moves gen on
	c.suspended.Store(false)
}

// Purge drops everything, for a node that may have missed changes.
func (c *Cache) Purge() {
	c.gen.Add(1)
	c.tenMu.Lock()
	for id, ts := range c.tenants {
		ts.stale.Store(true)
		delete(c.tenants, id)
	}
	c.tenMu.Unlock()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		c.gen.Add(1)
		sh.keys = table{}
		sh.absent = map[[32]byte]int64{}
		sh.mu.Unlock()
	}
	c.internMu.Lock()
	c.interned, c.arena = map[string]string{}, nil
	c.internMu.Unlock()
}

// Stats are counters for metrics and tests.
type Stats struct {
	Hits, Misses uint64
	Entries      int // found keys and "no such key" answers held
}

// Stats reads the counters.
func (c *Cache) Stats() Stats {
	var s Stats
	for i := range c.shards {
		sh := &c.shards[i]
		s.Hits += sh.hits.Load()
		s.Misses += sh.misses.Load()
		sh.mu.RLock()
		s.Entries += sh.keys.n + len(sh.absent)
		sh.mu.RUnlock()
	}
	return s
}

// table is an open-addressing hash table of entries by digest, with linear
// probing: 8 bytes a slot, at most three quarters full, grown by doubling
// into one allocation. (A Go map of the same would take about three times
// the memory, and leave holes in the heap as it grows.)
type table struct {
	slots []*entry // len is 0 or a power of two
	n     int
}

// home is where d's probe sequence starts, from digest bytes that do not
// pick the shard.
func (t *table) home(d *[32]byte) int {
	return int(binary.LittleEndian.Uint64(d[8:16]) & uint64(len(t.slots)-1))
}

func (t *table) get(d *[32]byte) *entry {
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.home(d); ; i = (i + 1) & mask {
		e := t.slots[i]
		if e == nil || e.digest == *d {
			return e
		}
	}
}

// put installs e, in place of an entry of the same digest if there is one.
func (t *table) put(e *entry) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	mask := len(t.slots) - 1
	for i := t.home(&e.digest); ; i = (i + 1) & mask {
		switch old := t.slots[i]; {
		case old == nil:
			t.slots[i] = e
			t.n++
			return
		case old.digest == e.digest:
			t.slots[i] = e
			return
		}
	}
}

func (t *table) grow() {
	old := t.slots
	t.slots, t.n = make([]*entry, max(16, 2*len(old))), 0
	for _, e := range old {
		if e != nil {
			t.put(e)
		}
	}
}

// remove drops the entry of digest d, if any, and moves the entries after
// it back so that every probe sequence stays unbroken.
func (t *table) remove(d *[32]byte) {
	if t.n == 0 {
		return
	}
	mask := len(t.slots) - 1
	i := t.home(d)
	for ; ; i = (i + 1) & mask {
		e := t.slots[i]
		if e == nil {
			return
		}
		if e.digest == *d {
			break
		}
	}
	t.slots[i] = nil
	t.n--
	for j := (i + 1) & mask; t.slots[j] != nil; j = (j + 1) & mask {
		// The entry at j may move to the hole at i unless its home lies
		// cyclically in (i, j].
		k := t.home(&t.slots[j].digest)
		if i <= j && (i < k && k <= j) || i > j && (i < k || k <= j) {
			continue
		}
		t.slots[i], t.slots[j] = t.slots[j], nil
		i = j
	}
}
