package keyward

import (
	"sync/atomic"
	"time"
)

// reanchorEvery bounds how long anchoredClock trusts the monotonic clock
// alone: a step of the system's wall clock (an administrator's date, an NTP
// step) shows in its readings at most this much later. NTP's gradual
// corrections slew the monotonic clock too, so they show at once.
const reanchorEvery = 50 * time.Millisecond

// anchoredClock reads the wall clock for the price of the monotonic one.
// time.Now reads two clocks (wall and monotonic, about 55 ns here); Since
// on a time that carries a monotonic reading reads only the monotonic one
// (about 27 ns). A reading is the anchor's wall time plus the monotonic time
// elapsed since the anchor, and the anchor is taken afresh every
// reanchorEvery. Verification reads the clock once per request, and this is
// a tenth of a cache hit's cost saved.
type anchoredClock struct {
	anchor atomic.Pointer[time.Time]
}

// Now is the current time, within reanchorEvery of a step of the wall clock.
// It allocates only when it takes a new anchor.
func (c *anchoredClock) Now() time.Time {
	if a := c.anchor.Load(); a != nil {
		if d := time.Since(*a); d >= 0 && d < reanchorEvery {
			return a.Add(d)
		}
	}
	t := time.Now()
	c.anchor.Store(&t)
	return t
}

// wallClock is the verifier's clock when the service has no injected one.
var wallClock anchoredClock
