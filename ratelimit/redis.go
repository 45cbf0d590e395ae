package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	neturl "net/url"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults of RedisOptions.
const (
	DefaultRedisPrefix     = "keyward:rl:"
	DefaultRedisTimeout    = 50 * time.Millisecond
	DefaultRedisRetryAfter = time.Second
	DefaultRedisLogEvery   = time.Minute
	redisStartTimeout      = 5 * time.Second
)

// RedisOptions tune a Redis limiter; zero values get the defaults above.
type RedisOptions struct {
	// Prefix namespaces the limiter's keys: a key's window is the Redis key
	// Prefix+keyID.
	Prefix string
	// Timeout bounds each call to Redis, waiting for a connection included.
	Timeout time.Duration
	// RetryAfter: after a failed call, calls limit on this node for this
	// long before trying Redis again, so that a Redis that hangs does not
	// add Timeout to every verification. Negative: try Redis on every call.
	RetryAfter time.Duration
	// Logger reports falling back to node-local limits, at most once per
	// LogEvery. Nil: no log.
	Logger   *slog.Logger
	LogEvery time.Duration
}

// Redis is a fixed-window limiter shared by every node that uses the same
// Redis: a key's uses on all of them count against one limit. It has the
// semantics of Local — a window starts at the first use after the previous
// one ended, refused uses neither count nor move the window, and the limit is
// the caller's at each call — with one difference: windows are measured by
// the Redis server's clock (the key's PX expiry), not by the now passed to
// Allow, so the nodes' clocks need not agree.
//
// Each call is one round trip running a Lua script, atomic in Redis. When
// Redis fails or does not answer within Timeout, the call is counted by a
// node-local Local limiter instead (fail to local limits: neither open nor
// closed), and so are the calls of the next RetryAfter.
type Redis struct {
	client     *redis.Client
	local      *Local
	prefix     string
	timeout    time.Duration
	retryAfter time.Duration
	log        *slog.Logger
	logEvery   time.Duration

	downUntil atomic.Int64 // unix nanoseconds until which calls go local
	lastLog   atomic.Int64 // unix nanoseconds of the last fallback log
	fallbacks atomic.Uint64
}

// allowScript counts one use of KEYS[1] if it is under ARGV[1] uses; the
// first use of a window sets its expiry to ARGV[2] milliseconds. It answers
// 1 for allowed, 0 for refused.
var allowScript = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
	return 0
end
if redis.call('INCR', KEYS[1]) == 1 then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// NewRedis connects to the Redis at url (redis://[user:password@]host:port/db
// or rediss:// for TLS) and checks that it answers.
func NewRedis(url string, opts RedisOptions) (*Redis, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	// Calls are bounded by their context; a call is not retried, so that a
	// use whose answer was lost is not counted twice.
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	r := &Redis{
		client:     redis.NewClient(o),
		local:      NewLocal(),
		prefix:     opts.Prefix,
		timeout:    opts.Timeout,
		retryAfter: opts.RetryAfter,
		log:        opts.Logger,
		logEvery:   opts.LogEvery,
	}
	if r.prefix == "" {
		r.prefix = DefaultRedisPrefix
	}
	if r.timeout <= 0 {
		r.timeout = DefaultRedisTimeout
	}
	if r.retryAfter == 0 {
		r.retryAfter = DefaultRedisRetryAfter
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.logEvery <= 0 {
		r.logEvery = DefaultRedisLogEvery
	}
	// go-redis's own lines (a pool that cannot dial, and the like) would go
	// to standard error, unstructured and once per call. They go to the
	// server's log at debug level: the limiter reports an unreachable Redis
	// itself, once per logEvery. The logger is the package's, process-wide.
	redis.SetLogger(redisLog{r.log})
	ctx, cancel := context.WithTimeout(context.Background(), redisStartTimeout)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		r.client.Close()
		return nil, fmt.Errorf("redis %s: %w", o.Addr, err)
	}
	// Load the script now, so that the first uses are one EVALSHA each.
	if err := allowScript.Load(ctx, r.client).Err(); err != nil {
		r.client.Close()
		return nil, fmt.Errorf("redis %s: load script: %w", o.Addr, err)
	}
	return r, nil
}

// Allow counts one use of id and reports whether it is within limit uses per
// window, across every node sharing this Redis. now is used only when Redis
// is unavailable and the node-local limiter answers.
func (r *Redis) Allow(id string, limit int, win time.Duration, now time.Time) bool {
	if limit < 1 {
		return false
	}
	if win <= 0 {
		return true // as Local: every use starts a window of its own
	}
	if until := r.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		r.fallbacks.Add(1)
		return r.local.Allow(id, limit, win, now)
	}
	ms := int64((win + time.Millisecond - 1) / time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	n, err := allowScript.Run(ctx, r.client, []string{r.prefix + id}, limit, ms).Int64()
	cancel()
	if err != nil {
		r.fallback(err)
		return r.local.Allow(id, limit, win, now)
	}
	return n == 1
}

func (r *Redis) fallback(err error) {
	n := r.fallbacks.Add(1)
	t := time.Now().UnixNano()
	if r.retryAfter > 0 {
		r.downUntil.Store(t + int64(r.retryAfter))
	}
	last := r.lastLog.Load()
	if last != 0 && t-last < int64(r.logEvery) || !r.lastLog.CompareAndSwap(last, t) {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v: %w", r.timeout, err)
	}
	r.log.Warn("rate limits: Redis unavailable, limiting on this node only", "err", err, "fallbacks", n)
}

// Fallbacks is the number of calls answered by the node-local limiter
// because Redis failed or was considered down.
func (r *Redis) Fallbacks() uint64 { return r.fallbacks.Load() }

// Close closes the connections to Redis.
func (r *Redis) Close() error { return r.client.Close() }

// redisLog is go-redis's logger, writing to slog at debug level.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
