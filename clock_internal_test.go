package keyward

import (
	"sync"
	"testing"
	"time"
)

// coarseClock reads what time.Now reads, up to its tick and the delay
// before its goroutine runs, from many goroutines at once; it is never
// ahead. The delay is large only on a saturated machine: under -race with
// every package's tests on two cores it has been seen past 50 ms.
func TestCoarseClock(t *testing.T) {
	var c coarseClock
	const slack = time.Second
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			deadline := time.Now().Add(100 * coarseTick)
			for time.Now().Before(deadline) {
				before := time.Now()
				got := c.Now()
				after := time.Now()
				if got.Before(before.Add(-coarseTick-slack)) || got.After(after) {
					t.Errorf("Now() = %v, outside [%v - %v, %v]", got, before, coarseTick+slack, after)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The clock moves while it is read, stops its goroutine when nobody reads
// it, and starts again, exact, at the next reading.
func TestCoarseClockIdles(t *testing.T) {
	var c coarseClock
	first := c.Now()
	moved := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(coarseTick) {
		if c.Now().After(first) {
			moved = true
			break
		}
	}
	if !moved {
		t.Fatal("the clock did not move in 5 s of readings")
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.ns.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the goroutine still ticks 10 s after the last reading (%d idle ticks stop it)", coarseIdleTicks)
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := time.Now()
	got := c.Now()
	if got.Before(before) {
		t.Errorf("first reading after idling %v, before %v: not exact", got, before)
	}
	if c.ns.Load() == 0 {
		t.Error("reading an idle clock did not start its goroutine")
	}
}
