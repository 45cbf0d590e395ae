package keyward

import (
	"sync"
	"sync/atomic"
	"time"
)

const (
	// coarseTick is how often coarseClock reads the wall clock while
	// verifications run, and so how far behind it may read (plus the
	// scheduling delay of its goroutine, which a machine saturated with
	// work can stretch to tens of milliseconds).
	coarseTick = time.Millisecond
	// coarseIdleTicks ticks without a reading stop the goroutine: an idle
	// server does not wake a thousand times a second.
	coarseIdleTicks = 100
)

// coarseClock is the verifier's clock: the wall time as a goroutine read it
// at its last tick, like the cached time of nginx's event loop. Reading it
// is one atomic load; time.Now costs about 55 ns on this machine's virtual
// clock, a sixth of a cache hit. A verification judges expiry and cache
// ages on it, except that a key within exactNearExpiry of its expiry is
// judged on time.Now (see Service.Verify); it never reads ahead of the wall
// clock (unless the wall clock steps back). The goroutine
// runs only while verifications come: it stops after coarseIdleTicks idle
// ticks, and the next reading starts it again with an exact time.
type coarseClock struct {
	ns     atomic.Int64 // unix nanoseconds at the last tick; 0 while no goroutine ticks
	wanted atomic.Bool  // a reading came since the last tick
	mu     sync.Mutex   // serializes starting and stopping the goroutine
}

// Now is the current time, within about coarseTick.
func (c *coarseClock) Now() time.Time {
	if !c.wanted.Load() { // one write a tick at most: readers on all cores share the line
		c.wanted.Store(true)
	}
	if ns := c.ns.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return c.start()
}

// start reads the clock exactly and, unless one runs already, starts the
// goroutine that keeps ns.
func (c *coarseClock) start() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ns := c.ns.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	t := time.Now()
	c.ns.Store(t.UnixNano())
	go c.run()
	return t
}

func (c *coarseClock) run() {
	tick := time.NewTicker(coarseTick)
	defer tick.Stop()
	idle := 0
	for range tick.C {
		if c.wanted.Swap(false) {
			idle = 0
		} else if idle++; idle >= coarseIdleTicks {
			c.mu.Lock()
			if !c.wanted.Load() {
				c.ns.Store(0)
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			idle = 0
		}
		c.ns.Store(time.Now().UnixNano())
	}
}

// exactNearExpiry is how near its expiry a key is judged on the exact clock
// rather than the coarse one: the coarse clock would have to lag by more
// than this (a process frozen for a minute, its readers running before its
// ticker) to judge an expired key valid.
const exactNearExpiry = time.Minute

// wallClock is the verifier's clock when the service has no injected one.
var wallClock coarseClock
