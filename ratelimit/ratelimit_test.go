package ratelimit

import (
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
