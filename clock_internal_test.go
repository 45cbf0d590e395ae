package keyward

import (
	"sync"
	"testing"
	"time"
)

// anchoredClock must read what time.Now reads, up to the drift between the
// monotonic and wall clocks over one anchor's life, across re-anchoring and
// from many goroutines at once.
func TestAnchoredClock(t *testing.T) {
	var c anchoredClock
	const slack = time.Millisecond
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			deadline := time.Now().Add(3 * reanchorEvery)
			for time.Now().Before(deadline) {
				before := time.Now()
				got := c.Now()
				after := time.Now()
				if got.Before(before.Add(-slack)) || got.After(after.Add(slack)) {
					t.Errorf("Now() = %v, outside [%v, %v]", got, before, after)
					return
				}
			}
		})
	}
	wg.Wait()
}

// An anchor older than reanchorEvery, or one from the future, is replaced by
// a fresh reading of the wall clock.
func TestAnchoredClockReanchors(t *testing.T) {
	for _, off := range []time.Duration{-time.Hour, -reanchorEvery, time.Hour} {
		var c anchoredClock
		stale := time.Now().Add(off)
		c.anchor.Store(&stale)
		before := time.Now()
		got := c.Now()
		if got.Before(before) || got.Sub(before) > time.Second {
			t.Errorf("anchor %v away: Now() = %v, want about %v", off, got, before)
		}
		if a := c.anchor.Load(); a == &stale {
			t.Errorf("anchor %v away was kept", off)
		}
	}
}
