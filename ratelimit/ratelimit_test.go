package ratelimit

import (
	"fmt"
	"hash/maphash"
	"sync"
	"testing"
	"time"
)

func TestLocalWindow(t *testing.T) {
	l := NewLocal()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		if !l.Allow("k", 3, time.Minute, t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("use %d refused within the limit", i+1)
		}
	}
	if l.Allow("k", 3, time.Minute, t0.Add(10*time.Second)) {
		t.Fatal("4th use in the window allowed")
	}
	if !l.Allow("other", 3, time.Minute, t0.Add(10*time.Second)) {
		t.Fatal("another key is limited by the first one's uses")
	}
	if !l.Allow("k", 3, time.Minute, t0.Add(time.Minute)) {
		t.Fatal("a new window did not start after the old one ended")
	}
}

// A use whose time reads a little before the window's start (a clock
// reading taken earlier by another goroutine, counted later) counts in the
// window: it does not start a new one, which would let the key past its
// limit. A reading a whole window earlier is a step of the wall clock back,
// and starts a new window, so that a step back cannot hold a key for long.
func TestLocalEarlierReadings(t *testing.T) {
	l := NewLocal()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if !l.Allow("k", 2, time.Minute, t0) || !l.Allow("k", 2, time.Minute, t0.Add(-time.Millisecond)) {
		t.Fatal("uses within the limit refused")
	}
	if l.Allow("k", 2, time.Minute, t0.Add(-2*time.Millisecond)) {
		t.Fatal("a third use, read a little before the window's start, was allowed past a limit of 2")
	}
	if !l.Allow("k", 2, time.Minute, t0.Add(-time.Minute)) {
		t.Fatal("a use a whole window before the start (the clock stepped back) did not start a new window")
	}
}

func TestLocalConcurrentNeverExceeds(t *testing.T) {
	l := NewLocal()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if l.Allow("k", 250, time.Hour, now) {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 250 {
		t.Fatalf("allowed %d uses, want exactly 250", allowed)
	}
}

// TestLocalWindowBoundaries: a window is [first use, first use + window); a
// refused use neither counts nor moves it.
func TestLocalWindowBoundaries(t *testing.T) {
	l := NewLocal()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true},
		{time.Second, false},
		{10*time.Second - time.Microsecond, false}, // refused uses do not extend the window
		{10 * time.Second, true},                   // a new window starts with this use
		{19 * time.Second, false},
		{20*time.Second - time.Nanosecond, false},
		{20 * time.Second, true},
		{time.Hour, true}, // long idle: a fresh window
		{time.Hour + 9*time.Second, false},
	}
	for _, s := range steps {
		if got := l.Allow("k", 1, 10*time.Second, t0.Add(s.at)); got != s.want {
			t.Errorf("use at +%v: allowed %v, want %v", s.at, got, s.want)
		}
	}
}

// TestLocalLimitPerCall: the limit is the caller's at each call, so a raised
// limit lets more uses into the current window at once.
func TestLocalLimitPerCall(t *testing.T) {
	l := NewLocal()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range 2 {
		if !l.Allow("k", 2, time.Hour, now) {
			t.Fatalf("use %d refused", i+1)
		}
	}
	if l.Allow("k", 2, time.Hour, now) {
		t.Fatal("3rd use of 2 allowed")
	}
	if !l.Allow("k", 3, time.Hour, now) {
		t.Error("limit raised to 3: the 3rd use refused")
	}
	if l.Allow("k", 3, time.Hour, now) {
		t.Error("limit 3: the 4th use allowed")
	}
}

// TestLocalEvictsOnlyEndedWindows: past maxPerShard keys in a shard, a new
// key drops the windows that have ended, never a current one.
func TestLocalEvictsOnlyEndedWindows(t *testing.T) {
	l := NewLocal()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	shardOf := func(id string) uint64 { return maphash.String(l.seed, id) % shards }
	const active = "active"
	sh := &l.shards[shardOf(active)]
	for i := 0; i < 3; i++ {
		if !l.Allow(active, 3, time.Minute, now) {
			t.Fatalf("use %d of the active key refused", i+1)
		}
	}
	// Fill its shard with ended windows.
	for i := 0; len(sh.m) < maxPerShard; i++ {
		sh.m[fmt.Sprintf("old-%d", i)] = &window{start: now.Add(-2 * time.Minute), count: 1}
	}
	newID := ""
	for i := 0; newID == ""; i++ {
		if id := fmt.Sprintf("new-%d", i); shardOf(id) == shardOf(active) {
			newID = id
		}
	}
	later := now.Add(30 * time.Second)
	if !l.Allow(newID, 3, time.Minute, later) {
		t.Fatal("a new key refused in a full shard")
	}
	if n := len(sh.m); n != 2 {
		t.Errorf("after eviction the shard holds %d windows, want 2 (the active key's and the new one's)", n)
	}
	if l.Allow(active, 3, time.Minute, later) {
		t.Error("eviction reset the active key's current window: its 4th use was allowed")
	}
}

// TestLocalEvictionKeepsLiveWindows: a full shard drops only windows that
// have ended by their own length, not by the length of the key being counted.
func TestLocalEvictionKeepsLiveWindows(t *testing.T) {
	l := NewLocal()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if !l.Allow("daily", 1, 24*time.Hour, now) {
		t.Fatal("first use refused")
	}
	sh := &l.shards[0]
	for i := range l.shards {
		if _, ok := l.shards[i].m["daily"]; ok {
			sh = &l.shards[i]
		}
	}
	// Fill the daily key's shard with short windows that have ended.
	for i := 0; len(sh.m) < maxPerShard; i++ {
		sh.m["short-"+time.Duration(i).String()] = &window{start: now.Add(-time.Hour), len: time.Second, count: 1}
	}
	// Counting a new 1-second key in that shard triggers eviction.
	for i := 0; ; i++ {
		id := "new-" + time.Duration(i).String()
		if &l.shards[shardIndex(l, id)] == sh {
			l.Allow(id, 1, time.Second, now.Add(time.Minute))
			break
		}
	}
	if _, ok := sh.m["daily"]; !ok {
		t.Fatal("eviction dropped a window that is still running")
	}
	if l.Allow("daily", 1, 24*time.Hour, now.Add(time.Minute)) {
		t.Fatal("the daily key got a second use within its window after an eviction")
	}
}
