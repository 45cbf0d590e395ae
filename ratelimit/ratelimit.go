// Package ratelimit enforces per-key rate limits on one node: a fixed window
// per key, in memory. Several nodes each limit on their own unless a shared
// limiter (Redis) is configured.
package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

const shards = 32

// Local is a node-local fixed-window limiter, safe for concurrent use.
type Local struct {
	seed   maphash.Seed
	shards [shards]shard
}

type shard struct {
	mu sync.Mutex
	m  map[string]*window
}

type window struct {
	start time.Time
	len   time.Duration // the window's own length: eviction must not use another key's
	count int
}

// maxPerShard bounds memory: past it, ended windows are dropped.
const maxPerShard = 1 << 16

// NewLocal returns an empty limiter.
func NewLocal() *Local {
	l := &Local{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = map[string]*window{}
	}
	return l
}

func shardIndex(l *Local, id string) uint64 { return maphash.String(l.seed, id) % shards }

// Allow counts one use of id and reports whether it is within limit uses per
// window. A window starts at the first use after the previous one ended.
func (l *Local) Allow(id string, limit int, win time.Duration, now time.Time) bool {
	sh := &l.shards[shardIndex(l, id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	w := sh.m[id]
	// A use read on a clock a little behind the one that opened the window
	// (another goroutine's reading, taken earlier, counted later) is in the
	// window; one a whole window before it means the wall clock stepped
	// back, and starts a new window.
	if w == nil || now.Sub(w.start) >= win || w.start.Sub(now) >= win {
		if w == nil {
			if len(sh.m) >= maxPerShard {
				for k, v := range sh.m {
					if now.Sub(v.start) >= v.len {
						delete(sh.m, k)
					}
				}
			}
			w = &window{}
			sh.m[id] = w
		}
		w.start, w.count = now, 0
	}
	w.len = win
	if w.count >= limit {
		return false
	}
	w.count++
	return true
}
