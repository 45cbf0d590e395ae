package api

import (
	"strconv"
	"sync"
	"time"
)

// failureLimiter counts failed verifications per client address in fixed
// windows. It is bounded: when it tracks too many addresses it drops the
// windows that have ended.
type failureLimiter struct {
	limit  int
	window time.Duration

	mu      sync.Mutex
	clients map[string]*failureWindow
}

type failureWindow struct {
	start time.Time
	count int
}

const maxTrackedClients = 100_000

func newFailureLimiter(limit int, window time.Duration) *failureLimiter {
	return &failureLimiter{limit: limit, window: window, clients: map[string]*failureWindow{}}
}

// fail counts one failure of addr at now; over the limit it reports the
// Retry-After seconds.
func (l *failureLimiter) fail(addr string, now time.Time) (retryAfter string, over bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[addr]
	if c == nil || now.Sub(c.start) >= l.window {
		if c == nil && len(l.clients) >= maxTrackedClients {
			l.sweep(now)
		}
		c = &failureWindow{start: now}
		l.clients[addr] = c
	}
	c.count++
	if c.count <= l.limit {
		return "", false
	}
	secs := int((c.start.Add(l.window).Sub(now) + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return strconv.Itoa(secs), true
}

func (l *failureLimiter) sweep(now time.Time) {
	for k, c := range l.clients {
		if now.Sub(c.start) >= l.window {
			delete(l.clients, k)
		}
	}
}
