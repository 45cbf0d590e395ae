// Package verifier keeps verification off the database: a node-local cache
// of keys by the digest of their secret, in front of the store. The rules of
// verification stay in package keyward (Service.Verify, Judge); this package
// only answers "which key, and what are its tenant's settings", fast.
//
// Correctness under concurrency rests on one generation counter: every
// invalidation bumps it, and a fill that started before an invalidation is
// not installed. So a fill racing a revocation can never put "active" back.
package verifier

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
)

// Defaults for Options.
const (
	DefaultMaxAge      = time.Minute
	DefaultNegativeTTL = 5 * time.Second
	shardCount         = 64
)

// Options tune the cache.
type Options struct {
	// MaxAge bounds how long a found key is served from memory without a
	// reread; a second net behind invalidation.
	MaxAge time.Duration
	// NegativeTTL is how long "no such key" is remembered, so that floods of
	// well-formed unknown keys do not all reach the store.
	NegativeTTL time.Duration
	// Clock for ages; monotonic time by default.
	Now func() time.Time
}

// Cache resolves key digests through memory, filling misses from the store.
// It implements keyward.Resolver and consumes keyward.Change.
type Cache struct {
	store  keyward.Store
	maxAge int64 // nanoseconds
	negTTL int64
	now    func() time.Time
	start  time.Time

	gen     atomic.Uint64
	shards  [shardCount]shard
	tenMu   sync.Mutex
	tenants map[string]*tenantState

	hits, misses atomic.Uint64
}

type shard struct {
	mu sync.RWMutex
	m  map[[32]byte]*entry
}

type entry struct {
	key    *keyward.Key // nil: no such key
	tenant *tenantState
	filled int64 // nanoseconds since Cache.start
}

// tenantState is a tenant's settings as the cache last read them. A change of
// settings marks it stale; entries that point at it are then misses.
type tenantState struct {
	settings keyward.Settings
	stale    atomic.Bool
}

var errNotFound = keyward.Errorf(keyward.ENotFound, "key not found")

// New makes an empty cache over store.
func New(store keyward.Store, opts Options) *Cache {
	c := &Cache{store: store, maxAge: int64(opts.MaxAge), negTTL: int64(opts.NegativeTTL), now: opts.Now,
		tenants: map[string]*tenantState{}}
	if c.maxAge <= 0 {
		c.maxAge = int64(DefaultMaxAge)
	}
	if c.negTTL <= 0 {
		c.negTTL = int64(DefaultNegativeTTL)
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.start = c.now()
	for i := range c.shards {
		c.shards[i].m = map[[32]byte]*entry{}
	}
	return c
}

func (c *Cache) shardOf(d *[32]byte) *shard { return &c.shards[d[0]%shardCount] }

func (c *Cache) clock() int64 { return int64(c.now().Sub(c.start)) }

// Resolve returns the key whose secret has digest d and its tenant's
// settings, from memory when it can. The returned key and settings are
// shared snapshots: callers must not modify them.
func (c *Cache) Resolve(ctx context.Context, d [32]byte) (*keyward.Key, *keyward.Settings, error) {
	sh := c.shardOf(&d)
	now := c.clock()
	sh.mu.RLock()
	e := sh.m[d]
	sh.mu.RUnlock()
	if e != nil {
		if e.key == nil {
			if now-e.filled < c.negTTL {
				c.hits.Add(1)
				return nil, nil, errNotFound
			}
		} else if now-e.filled < c.maxAge && !e.tenant.stale.Load() {
			c.hits.Add(1)
			return e.key, &e.tenant.settings, nil
		}
	}
	c.misses.Add(1)
	return c.fill(ctx, sh, d, now)
}

// fill reads the key and its tenant from the store and installs the result,
// unless an invalidation happened since the fill began.
func (c *Cache) fill(ctx context.Context, sh *shard, d [32]byte, now int64) (*keyward.Key, *keyward.Settings, error) {
	g := c.gen.Load()
	var k *keyward.Key
	var t *keyward.Tenant
	err := c.store.View(ctx, func(tx keyward.Tx) (err error) {
		if k, err = tx.KeyByHash(ctx, d[:]); err != nil {
			return err
		}
		t, err = tx.TenantByID(ctx, k.TenantID)
		return err
	})
	notFound := keyward.IsCode(err, keyward.ENotFound)
	if err != nil && !notFound {
		return nil, nil, err
	}
	e := &entry{filled: now}
	if !notFound {
		e.key, e.tenant = k, c.tenantState(t, g)
	}
	sh.mu.Lock()
	if c.gen.Load() == g {
		sh.m[d] = e
	}
	sh.mu.Unlock()
	if notFound {
		return nil, nil, errNotFound
	}
	return e.key, &e.tenant.settings, nil
}

// tenantState shares one settings snapshot among a tenant's entries. A
// snapshot read before the latest invalidation is never shared.
func (c *Cache) tenantState(t *keyward.Tenant, g uint64) *tenantState {
	c.tenMu.Lock()
	defer c.tenMu.Unlock()
	ts := c.tenants[t.ID]
	if ts != nil && !ts.stale.Load() {
		return ts
	}
	ts = &tenantState{settings: t.Settings}
	if c.gen.Load() == g {
		c.tenants[t.ID] = ts
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
		delete(sh.m, d)
		sh.mu.Unlock()
	}
}

// Purge drops everything: for a node that can no longer trust that it hears
// of every change (a lost notification connection).
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
		sh.m = map[[32]byte]*entry{}
		sh.mu.Unlock()
	}
}

// Stats are counters for metrics and tests.
type Stats struct {
	Hits, Misses uint64
	Entries      int
}

// Stats reads the counters.
func (c *Cache) Stats() Stats {
	s := Stats{Hits: c.hits.Load(), Misses: c.misses.Load()}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		s.Entries += len(sh.m)
		sh.mu.RUnlock()
	}
	return s
}
