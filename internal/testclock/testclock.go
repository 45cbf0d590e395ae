// Package testclock is the injectable clock of Keyward's tests: it stands
// still until a test moves it, so that nothing depends on sleeping. It is
// safe for concurrent use (servers read it from their own goroutines).
package testclock

import (
	"sync"
	"time"
)

// Clock is a clock that only moves when told to. Its Now is what a test
// passes wherever Keyward takes a clock (keyward.Options.Now, serve's
// options, the usage recorder).
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock standing at t.
func New(t time.Time) *Clock { return &Clock{now: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
