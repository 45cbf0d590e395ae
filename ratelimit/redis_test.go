package ratelimit

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/ratelimit/redistest"
	"github.com/redis/go-redis/v9"
)

// The tests run against a real Redis (package redistest): without one they
// skip, or fail under KEYWARD_TEST_REQUIRE=1. Each test uses keys under a
// prefix of its own and deletes only those.

// newTestRedis is a limiter on the test Redis under prefix, with a timeout
// generous enough for a loaded machine under -race.
func newTestRedis(t testing.TB, url, prefix string, o RedisOptions) *Redis {
	t.Helper()
	o.Prefix = prefix
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	r, err := NewRedis(url, o)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func noFallbacks(t testing.TB, rs ...*Redis) {
	t.Helper()
	for i, r := range rs {
		if n := r.Fallbacks(); n != 0 {
			t.Fatalf("limiter %d fell back to local limits %d times: Redis did not answer", i, n)
		}
	}
}

// TestRedisWindow: limit uses per window; a refused use neither counts nor
// extends the window; a new window starts after the old one ended.
func TestRedisWindow(t *testing.T) {
	url := redistest.URL(t)
	r := newTestRedis(t, url, redistest.Prefix(t), RedisOptions{})
	const win = time.Second
	start := time.Now()
	for i := range 3 {
		if !r.Allow("k", 3, win, time.Now()) {
			t.Fatalf("use %d refused within the limit", i+1)
		}
	}
	firstDone := time.Now()
	if !r.Allow("other", 3, win, time.Now()) {
		t.Fatal("another key is limited by the first one's uses")
	}
	// The window runs from the first use: no later than firstDone+win, no
	// earlier than start+win.
	time.Sleep(win / 2)
	if time.Since(start) < win-100*time.Millisecond {
		if r.Allow("k", 3, win, time.Now()) {
			t.Fatal("4th use in the window allowed")
		}
	} else {
		t.Log("the machine is too slow to check the 4th use within the window")
	}
	time.Sleep(time.Until(firstDone.Add(win + 300*time.Millisecond)))
	// Refused uses half way through did not move the window's end.
	if !r.Allow("k", 3, win, time.Now()) {
		t.Fatal("a new window did not start after the old one ended")
	}
	if !r.Allow("k", 3, win, time.Now()) || !r.Allow("k", 3, win, time.Now()) || r.Allow("k", 3, win, time.Now()) {
		t.Fatal("the new window does not allow exactly 3 uses")
	}
	noFallbacks(t, r)
}

// TestRedisWindowExpiry: the Redis key of a window expires with the window.
func TestRedisWindowExpiry(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t)
	r := newTestRedis(t, url, prefix, RedisOptions{})
	if !r.Allow("k", 1, 10*time.Second, time.Now()) {
		t.Fatal("first use refused")
	}
	ttl, err := r.client.PTTL(context.Background(), prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 10*time.Second {
		t.Fatalf("window key's TTL is %v, want in (0, 10s]", ttl)
	}
	r.Allow("k", 1, 10*time.Second, time.Now()) // refused: the TTL stays
	ttl2, err := r.client.PTTL(context.Background(), prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl2 > ttl {
		t.Fatalf("a refused use extended the window: TTL %v then %v", ttl, ttl2)
	}
	noFallbacks(t, r)
}

// TestRedisLimitPerCall: as Local, the limit is the caller's at each call.
func TestRedisLimitPerCall(t *testing.T) {
	url := redistest.URL(t)
	r := newTestRedis(t, url, redistest.Prefix(t), RedisOptions{})
	now := time.Now()
	for i := range 2 {
		if !r.Allow("k", 2, time.Hour, now) {
			t.Fatalf("use %d refused", i+1)
		}
	}
	if r.Allow("k", 2, time.Hour, now) {
		t.Fatal("3rd use of 2 allowed")
	}
	if !r.Allow("k", 3, time.Hour, now) {
		t.Error("limit raised to 3: the 3rd use refused")
	}
	if r.Allow("k", 3, time.Hour, now) {
		t.Error("limit 3: the 4th use allowed")
	}
	if r.Allow("k", 0, time.Hour, now) {
		t.Error("limit 0 allowed a use")
	}
	noFallbacks(t, r)
}

// TestRedisTwoNodesShareLimit: two limiters on one Redis ("two nodes")
// count against one limit.
func TestRedisTwoNodesShareLimit(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t)
	a := newTestRedis(t, url, prefix, RedisOptions{})
	b := newTestRedis(t, url, prefix, RedisOptions{})
	allowed := 0
	for range 6 {
		for _, r := range []*Redis{a, b} {
			if r.Allow("k", 10, time.Hour, time.Now()) {
				allowed++
			}
		}
	}
	if allowed != 10 {
		t.Fatalf("two nodes with 6 uses each allowed %d, want exactly 10", allowed)
	}
	noFallbacks(t, a, b)
}

// TestRedisConcurrentNeverExceeds: many goroutines on two nodes get exactly
// the limit, never more.
func TestRedisConcurrentNeverExceeds(t *testing.T) {
	url := redistest.URL(t)
	prefix := redistest.Prefix(t)
	nodes := []*Redis{newTestRedis(t, url, prefix, RedisOptions{}), newTestRedis(t, url, prefix, RedisOptions{})}
	const limit = 100
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := nodes[g%2]
			for range 25 {
				if r.Allow("k", limit, time.Hour, time.Now()) {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	noFallbacks(t, nodes...)
	if n := allowed.Load(); n != limit {
		t.Fatalf("400 concurrent uses on two nodes allowed %d, want exactly %d", n, limit)
	}
}

// TestRedisFallbackToLocal: when Redis refuses connections or does not
// answer, a call limits on this node within the timeout, logs once, and
// Redis is used again once it is back.
func TestRedisFallbackToLocal(t *testing.T) {
	url := redistest.URL(t)
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, o.Addr)
	proxied := strings.Replace(url, o.Addr, p.addr(), 1)
	if proxied == url {
		t.Fatalf("cannot point %s at a proxy", url)
	}
	var logBuf lockedBuffer
	const timeout = 100 * time.Millisecond
	r := newTestRedis(t, proxied, redistest.Prefix(t), RedisOptions{
		Timeout: timeout, RetryAfter: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logBuf, nil)),
	})
	if !r.Allow("warm", 5, time.Hour, time.Now()) {
		t.Fatal("first use refused")
	}
	noFallbacks(t, r)

	for _, mode := range []proxyMode{proxyDrop, proxyHang} {
		t.Run(mode.String(), func(t *testing.T) {
			time.Sleep(300 * time.Millisecond) // past RetryAfter: the first call tries Redis
			p.set(mode)
			before := r.Fallbacks()
			key := "down-" + mode.String()
			now := time.Now()
			allowed := 0
			for i := range 10 {
				start := time.Now()
				if r.Allow(key, 3, time.Hour, now.Add(time.Duration(i)*time.Millisecond)) {
					allowed++
				}
				if d := time.Since(start); d > timeout+2*time.Second {
					t.Fatalf("a call took %v with Redis %s: the timeout is %v", d, mode, timeout)
				}
			}
			if allowed != 3 {
				t.Fatalf("with Redis %s: %d of 10 uses allowed, want the local limit of 3", mode, allowed)
			}
			if n := r.Fallbacks() - before; n != 10 {
				t.Fatalf("with Redis %s: %d fallbacks, want 10", mode, n)
			}
		})
	}
	if n := strings.Count(logBuf.String(), "Redis unavailable"); n != 1 {
		t.Errorf("the fallback was logged %d times, want once per minute:\n%s", n, logBuf.String())
	}

	// Back up: after RetryAfter, Redis answers again.
	p.set(proxyForward)
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := r.Fallbacks()
		r.Allow("back", 1000, time.Hour, time.Now())
		if r.Fallbacks() == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Redis is back but calls still fall back to local limits")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !r.Allow("shared-again", 1, time.Hour, time.Now()) || r.Allow("shared-again", 1, time.Hour, time.Now()) {
		t.Fatal("after recovery Redis does not limit")
	}
}

// TestNewRedisErrors: a bad URL or a Redis that does not answer is an error
// at start.
func TestNewRedisErrors(t *testing.T) {
	if _, err := NewRedis("http://127.0.0.1:6379", RedisOptions{}); err == nil {
		t.Error("an http:// URL accepted")
	}
	_, err := NewRedis("redis://kw:s3cret@127.0.0.1:63 79/0", RedisOptions{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a URL that does not parse: error %v, want one without the password", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var logBuf lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if _, err := NewRedis("redis://"+addr+"/0", RedisOptions{Logger: logger}); err == nil {
		t.Error("NewRedis succeeded with nothing listening")
	}
	// What go-redis itself says about it reaches the server's log, at
	// debug level, and not standard error.
	if out := logBuf.String(); !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "redis client: ") {
		t.Errorf("go-redis's own lines are not in the server's log at debug level:\n%s", out)
	}
}

// --- a TCP proxy in front of the test Redis that can refuse or hang

type proxyMode int32

const (
	proxyForward proxyMode = iota
	proxyDrop              // accept and close at once
	proxyHang              // accept and never answer
)

func (m proxyMode) String() string {
	return [...]string{"forward", "refusing", "hanging"}[m]
}

type proxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// set changes the mode and cuts the connections of the old one.
func (p *proxy) set(m proxyMode) {
	p.mode.Store(int32(m))
	p.closeAll()
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		switch proxyMode(p.mode.Load()) {
		case proxyDrop:
			c.Close()
		case proxyHang:
			p.track(c) // held open until the mode changes
		case proxyForward:
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.track(c)
			p.track(up)
			p.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
