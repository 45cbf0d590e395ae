// Package usage keeps key usage off the verification hot path: last-used
// times and hourly counts by outcome are kept in memory and written to the
// store in batches, and on Close. It also watches each key's rate of use and
// reports a key whose use jumps far above its own recent rate.
package usage

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// DefaultInterval keeps last_used_at within the contract's 10 seconds.
const DefaultInterval = 2 * time.Second

// SpikeConfig says when a key's use counts as a spike: a minute with at
// least MinPerMinute verifications and more than Factor times the key's
// recent average per minute, after the key has been watched for Warmup
// minutes. At most one spike per key per Cooldown.
type SpikeConfig struct {
	MinPerMinute int64
	Factor       float64
	Warmup       int
	Cooldown     time.Duration
}

// DefaultSpikeConfig flags a tenfold jump to at least 100 a minute.
var DefaultSpikeConfig = SpikeConfig{MinPerMinute: 100, Factor: 10, Warmup: 10, Cooldown: time.Hour}

// Option configures a Recorder.
type Option func(*Recorder)

// WithSpikes turns spike detection on; report receives spikes at each flush.
func WithSpikes(cfg SpikeConfig, report func(context.Context, []keyward.UsageSpike) error) Option {
	return func(r *Recorder) { r.spikeCfg, r.reportSpikes = cfg, report }
}

// WithClock sets the clock that decides which minutes have ended; it must be
// the clock that stamps the uses (the Service's).
func WithClock(now func() time.Time) Option { return func(r *Recorder) { r.now = now } }

// Recorder batches last-used times and usage counts per key.
type Recorder struct {
	now      func() time.Time
	store    keyward.Store
	log      *slog.Logger
	interval time.Duration
	chunk    int // keys a flush transaction writes: flushChunk

	spikeCfg     SpikeConfig
	reportSpikes func(context.Context, []keyward.UsageSpike) error

	// shards hold what the hot path notes, each key in one shard (by its
	// ID), each shard under its own lock, so that verifications of
	// different keys on different cores do not wait for one another.
	shards [recorderShards]shard

	flushMu sync.Mutex // one flush at a time, so batches are never written out of order
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// recorderShards is how many locks the recorder's state is split under.
const recorderShards = 32

// shard is one part of the recorder's state.
type shard struct {
	mu sync.Mutex
	// rates holds, per key used within the last hour, what the hot path
	// notes (uses and counts since the last flush) and the key's recent
	// rate: one map lookup per call. Flush moves the uses and counts into
	// its batch.
	rates map[string]*keyUse
	// pending and counts are what is to be written: batches a failed flush
	// kept, counts of hours that ended before a flush, and odd codes.
	pending map[string]time.Time
	counts  map[countKey]int64
	spikes  []keyward.UsageSpike
	_       [64]byte // shards sit on cache lines of their own
}

// shardOf is the shard of a key: by the last two characters of its ID,
// which are random.
func (r *Recorder) shardOf(keyID string) *shard {
	var h uint
	if n := len(keyID); n >= 2 {
		h = uint(keyID[n-1])*61 + uint(keyID[n-2])
	} else if n == 1 {
		h = uint(keyID[0])
	}
	return &r.shards[h%recorderShards]
}

type countKey struct {
	keyID string
	hour  int64 // unix seconds of the hour's start
	code  string
}

// keyUse is one key's use since the last flush and, with spike detection,
// its recent rate.
type keyUse struct {
	used   int64 // unix nanoseconds of the latest use not yet written; 0: none
	hour   int64 // unix seconds of the hour that n counts
	n      [len(countedCodes)]uint32
	active int64 // unix minute of the last call, to forget idle keys
	rated  bool  // rate is in use
	rate   rate
}

// countedCodes are the codes keyUse counts in place; any other goes to
// its shard's counts directly.
var countedCodes = [...]string{keyward.CodeValid, keyward.CodeInactive, keyward.CodeRevoked, keyward.CodeExpired,
	keyward.CodeKeysDisabled, keyward.CodeForbidden, keyward.CodeRateLimited, keyward.CodeNotFound}

func codeIndex(code string) int {
	switch code {
	case keyward.CodeValid:
		return 0
	case keyward.CodeInactive:
		return 1
	case keyward.CodeRevoked:
		return 2
	case keyward.CodeExpired:
		return 3
	case keyward.CodeKeysDisabled:
		return 4
	case keyward.CodeForbidden:
		return 5
	case keyward.CodeRateLimited:
		return 6
	case keyward.CodeNotFound:
		return 7
	}
	return -1
}

// rate is one key's recent use, per minute.
type rate struct {
	key     *keyward.Key // for the spike's event
	minute  int64        // unix minute being counted
	count   int64
	avg     float64 // exponentially weighted average per minute
	minutes int     // minutes watched
	alerted int64   // unix minute of the last spike
	last    int64   // unix minute of the last use
}

// New starts a recorder that flushes every interval until Close.
func New(store keyward.Store, log *slog.Logger, interval time.Duration, opts ...Option) *Recorder {
	if interval <= 0 {
		interval = DefaultInterval
	}
	r := &Recorder{now: time.Now, store: store, log: log, interval: interval, chunk: flushChunk,
		stop: make(chan struct{}), done: make(chan struct{})}
	for i := range r.shards {
		sh := &r.shards[i]
		sh.rates, sh.pending, sh.counts = map[string]*keyUse{}, map[string]time.Time{}, map[countKey]int64{}
	}
	for _, o := range opts {
		o(r)
	}
	go r.loop()
	return r
}

// Used notes one successful use of a key; it never blocks on the store.
func (r *Recorder) Used(keyID string, at time.Time) {
	ns := at.UnixNano()
	sh := r.shardOf(keyID)
	sh.mu.Lock()
	u := sh.use(keyID, at.Unix()/60)
	if ns > u.used {
		u.used = ns
	}
	sh.mu.Unlock()
}

// use is the keyUse of a key, made on first use. Called with mu held.
func (sh *shard) use(keyID string, minute int64) *keyUse {
	u := sh.rates[keyID]
	if u == nil {
		u = &keyUse{}
		sh.rates[keyID] = u
	}
	if minute > u.active {
		u.active = minute
	}
	return u
}

// carry moves u's counts to a batch, for a new hour or a flush.
func carry(keyID string, u *keyUse, to map[countKey]int64) {
	for i, n := range u.n {
		if n != 0 {
			to[countKey{keyID: keyID, hour: u.hour, code: countedCodes[i]}] += int64(n)
			u.n[i] = 0
		}
	}
}

// Count notes one verification of a found key with its outcome; a VALID
// one is also a use, as Used notes it (keyward.Options.OnVerify).
func (r *Recorder) Count(k *keyward.Key, code string, at time.Time) {
	sec := at.Unix()
	hour := sec - sec%3600
	sh := r.shardOf(k.ID)
	sh.mu.Lock()
	u := sh.use(k.ID, sec/60)
	if code == keyward.CodeValid {
		if ns := at.UnixNano(); ns > u.used {
			u.used = ns
		}
	}
	if i := codeIndex(code); i < 0 {
		sh.counts[countKey{keyID: k.ID, hour: hour, code: code}]++
	} else {
		if u.hour != hour || u.n[i] == math.MaxUint32 {
			carry(k.ID, u, sh.counts)
			u.hour = hour
		}
		u.n[i]++
	}
	if r.reportSpikes != nil {
		st := &u.rate
		if !u.rated {
			*st = rate{minute: sec / 60, alerted: -1 << 40}
			u.rated = true
		}
		st.key = k
		m := sec / 60
		if m > st.minute {
			r.closeMinutes(sh, st, m)
		}
		if m > st.last {
			st.last = m
		}
		st.count++
	}
	sh.mu.Unlock()
}

// closeMinutes ends st's counting minute (and any idle ones after it) at
// minute now, and notes a spike in sh if the ended minute was one. Called
// with sh.mu held.
func (r *Recorder) closeMinutes(sh *shard, st *rate, now int64) {
	c := r.spikeCfg
	if st.minutes >= c.Warmup && st.count >= c.MinPerMinute && float64(st.count) > c.Factor*st.avg &&
		(st.minute-st.alerted)*60 >= int64(c.Cooldown/time.Second) {
		st.alerted = st.minute
		sh.spikes = append(sh.spikes, keyward.UsageSpike{Key: st.key, Minute: time.Unix(st.minute*60, 0).UTC(),
			Count: st.count, Average: st.avg})
	}
	st.avg = nextAverage(st.avg, float64(st.count), st.minutes)
	st.minutes++
	for idle := now - st.minute - 1; idle > 0; idle-- {
		if st.avg == 0 {
			st.minutes += int(idle)
			break
		}
		st.avg = nextAverage(st.avg, 0, st.minutes)
		st.minutes++
		if st.avg < 1e-3 {
			st.avg = 0
		}
	}
	st.minute, st.count = now, 0
}

// nextAverage adds the count of one more minute to the average of the n
// minutes before it: their plain mean while n is small, so that the average
// is the key's real rate from the first minutes on (an exponential average
// started at zero would still be a third short after ten minutes, and flag
// jumps smaller than Factor), then exponentially weighted.
func nextAverage(avg, count float64, n int) float64 {
	const weight = 0.1
	w := weight
	if n < int(1/weight) {
		w = 1 / float64(n+1)
	}
	return avg + w*(count-avg)
}

func (r *Recorder) loop() {
	defer close(r.done)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if err := r.Flush(context.Background()); err != nil {
				r.log.Error("usage flush failed; will retry", "err", err)
			}
		}
	}
}

// Flush writes what has been noted so far. On failure the batch is kept for
// the next flush, merged with newer uses.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	now := r.now().Unix() / 60
	used, counts := map[string]time.Time{}, map[countKey]int64{}
	var spikes []keyward.UsageSpike
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for id, at := range sh.pending {
			used[id] = at
		}
		for k, n := range sh.counts {
			counts[k] += n
		}
		sh.pending, sh.counts = map[string]time.Time{}, map[countKey]int64{}
		for id, u := range sh.rates {
			if u.used != 0 {
				if at := time.Unix(0, u.used).UTC(); !used[id].After(at) {
					used[id] = at
				}
				u.used = 0
			}
			carry(id, u, counts)
			if st := &u.rate; u.rated {
				if st.minute < now {
					r.closeMinutes(sh, st, now)
				}
				if now-st.last > 60 {
					u.rated = false // idle for an hour: forget its rate
				}
			}
			if !u.rated || now-u.active > 60 {
				delete(sh.rates, id) // nothing left to keep, or idle for an hour: forget it
			}
		}
		spikes = append(spikes, sh.spikes...)
		sh.spikes = nil
		sh.mu.Unlock()
	}

	err := r.write(ctx, used, counts)
	if len(spikes) > 0 {
		if serr := r.reportSpikes(ctx, spikes); serr != nil {
			r.log.Error("recording usage spikes failed", "err", serr, "spikes", len(spikes))
			if err == nil {
				err = serr
			}
		}
	}
	return err
}

// flushChunk is how many keys' usage one transaction of a flush writes. A
// flush of many keys is several transactions, so that it never holds the
// store's writer for long: the API's own writes wait for one chunk at most.
const flushChunk = 2000

// write stores used and counts, r.chunk keys to a transaction. What a
// failed transaction and the ones after it would have written goes back to
// pending, for the next flush.
func (r *Recorder) write(ctx context.Context, used map[string]time.Time, counts map[countKey]int64) error {
	byKey := make(map[string][]countKey, len(used))
	for k := range counts {
		byKey[k.keyID] = append(byKey[k.keyID], k)
	}
	ids := make([]string, 0, len(byKey)+len(used))
	for id := range used {
		ids = append(ids, id)
	}
	for id := range byKey {
		if _, ok := used[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // chunks in key order: two nodes' flushes take rows in the same order
	for len(ids) > 0 {
		chunk := ids[:min(r.chunk, len(ids))]
		touched := make(map[string]time.Time, len(chunk))
		var batch []keyward.UsageCount
		for _, id := range chunk {
			if at, ok := used[id]; ok {
				touched[id] = at
			}
			for _, k := range byKey[id] {
				batch = append(batch, keyward.UsageCount{KeyID: id, Hour: time.Unix(k.hour, 0).UTC(), Code: k.code, Count: counts[k]})
			}
		}
		err := r.store.Update(ctx, func(tx keyward.Tx) error {
			if err := tx.TouchKeys(ctx, touched); err != nil {
				return err
			}
			return tx.AddUsage(ctx, batch)
		})
		if err != nil {
			for _, id := range ids {
				sh := r.shardOf(id)
				sh.mu.Lock()
				if at, ok := used[id]; ok {
					if prev, ok := sh.pending[id]; !ok || at.After(prev) {
						sh.pending[id] = at
					}
				}
				for _, k := range byKey[id] {
					sh.counts[k] += counts[k]
				}
				sh.mu.Unlock()
			}
			return err
		}
		ids = ids[len(chunk):]
	}
	return nil
}

// Close stops the background loop and writes what is pending.
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	return r.Flush(ctx)
}
