package verifier_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/usage"
	"github.com/keyward/keyward/verifier"
	"github.com/keyward/keyward/verifier/verifiertest"
)

// The benchmarks run over a seeded SQLite database of KEYWARD_BENCH_KEYS
// keys (default 10,000; the figures of docs/performance.md use 1,000,000).
// The database is built once and kept in os.TempDir() for later runs.
// Everything is wired the way cmd/keyward wires it: the cache in front of
// the store, and the usage recorder (with spike detection) behind
// OnUse and OnVerify. The recorder writes its batches to a scratch database
// of its own, so that runs do not change the seeded one (last-used times
// would change what the next run's cache holds).

func benchKeys(tb testing.TB) int {
	n := 10_000
	if v := os.Getenv("KEYWARD_BENCH_KEYS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			tb.Fatalf("KEYWARD_BENCH_KEYS=%q: want a number of at least 1000", v)
		}
	}
	return n
}

// world is the shared state of the benchmarks: built once per process,
// since seeding and filling a million keys takes a while.
type world struct {
	n       int
	db      *sqlite.DB
	hasher  *keyward.Hasher
	secrets []string
	cache   *verifier.Cache // holds every seeded key
	scratch keyward.Store   // where usage recorders write
	svc     *keyward.Service
	rec     *usage.Recorder
	// heap and live are the growth of HeapInuse and HeapAlloc, after GC,
	// from filling the cache with all n keys.
	heap, live uint64
	fill       time.Duration
}

var (
	worldOnce sync.Once
	theWorld  *world
	worldErr  error
)

func getWorld(b *testing.B) *world {
	b.Helper()
	n := benchKeys(b)
	worldOnce.Do(func() { theWorld, worldErr = newWorld(n) })
	if worldErr != nil {
		b.Fatal(worldErr)
	}
	return theWorld
}

// wire builds a service over db the way cmd/keyward does, with cache in
// front of the store (nil: the store answers every verification), and a
// usage recorder that writes to scratch.
func wire(db, scratch keyward.Store, h *keyward.Hasher, cache *verifier.Cache) (*keyward.Service, *usage.Recorder) {
	var svc *keyward.Service
	rec := usage.New(scratch, slog.New(slog.NewTextHandler(io.Discard, nil)), usage.DefaultInterval,
		usage.WithSpikes(usage.DefaultSpikeConfig, func(ctx context.Context, s []keyward.UsageSpike) error {
			return svc.RecordUsageSpikes(ctx, s)
		}))
	opts := keyward.Options{OnUse: rec.Used, OnVerify: rec.Count}
	if cache != nil {
		opts.Resolver, opts.OnChange = cache, cache.Invalidate
	}
	svc = keyward.NewService(db, h, opts)
	return svc, rec
}

func newWorld(n int) (*world, error) {
	ctx := context.Background()
	w := &world{n: n, hasher: verifiertest.Hasher()}
	var err error
	if w.db, _, err = verifiertest.Open(ctx, "", n); err != nil {
		return nil, err
	}
	w.secrets = make([]string, n)
	for i := range w.secrets {
		w.secrets[i] = verifiertest.Secret(i)
	}
	w.cache = verifier.New(w.db, verifier.Options{MaxAge: time.Hour})
	// One goroutine fills, as a stream of verifications would: filling from
	// several at once piles up database/sql's per-transaction goroutines,
	// whose descriptors the runtime keeps for reuse, and that would count
	// here though it is not the cache's.
	before := memStats()
	start := time.Now()
	if err := fillCacheN(ctx, w.cache, w.hasher, w.secrets, 1); err != nil {
		return nil, err
	}
	w.fill = time.Since(start)
	after := memStats()
	w.heap, w.live = after.HeapInuse-before.HeapInuse, after.HeapAlloc-before.HeapAlloc
	if s := w.cache.Stats(); s.Entries != n {
		return nil, fmt.Errorf("cache holds %d entries, want %d", s.Entries, n)
	}
	if scratchDir, err = os.MkdirTemp("", "keyward-bench-usage-"); err != nil {
		return nil, err
	}
	if w.scratch, err = sqlite.Open(ctx, filepath.Join(scratchDir, "usage.db")); err != nil {
		return nil, err
	}
	w.svc, w.rec = wire(w.db, w.scratch, w.hasher, w.cache)
	return w, nil
}

// scratchDir holds the recorders' database; TestMain removes it.
var scratchDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if scratchDir != "" {
		os.RemoveAll(scratchDir)
	}
	os.Exit(code)
}

// settle writes what the world's recorder holds, outside the timings, so
// that one benchmark's uses are not flushed during the next one.
func (w *world) settle(b *testing.B) {
	b.Cleanup(func() {
		if err := w.rec.Flush(context.Background()); err != nil {
			b.Errorf("usage flush: %v", err)
		}
	})
}

// fillCache resolves every secret through the cache, on every core.
func fillCache(ctx context.Context, c *verifier.Cache, h *keyward.Hasher, secrets []string) error {
	return fillCacheN(ctx, c, h, secrets, runtime.GOMAXPROCS(0))
}

// fillCacheN resolves every secret through the cache from workers goroutines.
func fillCacheN(ctx context.Context, c *verifier.Cache, h *keyward.Hasher, secrets []string, workers int) error {
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < len(secrets); i += workers {
				if _, _, err := c.Resolve(ctx, h.Digest(secrets[i]), time.Now()); err != nil {
					errs <- fmt.Errorf("resolve seeded key %d: %w", i, err)
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func memStats() runtime.MemStats {
	var m runtime.MemStats
	for range 2 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m
}

// hot is how many distinct keys the "hot" variants cycle through: a working
// set that stays in the CPU caches. The "all" variants cycle through every
// seeded key, so most lookups miss the CPU caches.
const hot = 1000

func sets(w *world) []struct {
	name string
	keys []string
} {
	return []struct {
		name string
		keys []string
	}{{"hot", w.secrets[:hot]}, {"all", w.secrets}}
}

// BenchmarkVerifyCacheHit is Service.Verify answered from memory: parse and
// checksum, HMAC, cache lookup, Judge, usage counting.
func BenchmarkVerifyCacheHit(b *testing.B) {
	w := getWorld(b)
	ctx := context.Background()
	for _, set := range sets(w) {
		b.Run(fmt.Sprintf("keys=%s", set.name), func(b *testing.B) {
			w.settle(b)
			verifyValidLoop(b, ctx, w.svc, set.keys)
		})
	}
}

// verifyValidLoop is the timed loop of the cache-hit benchmarks: keys in
// turn, each of which must verify VALID.
func verifyValidLoop(b *testing.B, ctx context.Context, svc *keyward.Service, keys []string) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		res, err := svc.Verify(ctx, keyward.VerifyInput{Key: keys[i]})
		if err != nil || res.Code != keyward.CodeValid {
			b.Fatalf("Verify = %s, %v", res.Code, err)
		}
		if i++; i == len(keys) {
			i = 0
		}
	}
}

// BenchmarkVerifyCacheHitNoUsage is BenchmarkVerifyCacheHit without the
// usage recorder: what counting uses costs, by difference.
func BenchmarkVerifyCacheHitNoUsage(b *testing.B) {
	w := getWorld(b)
	ctx := context.Background()
	svc := keyward.NewService(w.db, w.hasher, keyward.Options{Resolver: w.cache, OnChange: w.cache.Invalidate})
	verifyValidLoop(b, ctx, svc, w.secrets[:hot])
}

// BenchmarkVerifyCacheHitParallel is BenchmarkVerifyCacheHit from every core.
func BenchmarkVerifyCacheHitParallel(b *testing.B) {
	w := getWorld(b)
	ctx := context.Background()
	w.settle(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		keys := w.secrets[:hot]
		for pb.Next() {
			res, err := w.svc.Verify(ctx, keyward.VerifyInput{Key: keys[i]})
			if err != nil || res.Code != keyward.CodeValid {
				b.Errorf("Verify = %s, %v", res.Code, err)
				return
			}
			if i++; i == len(keys) {
				i = 0
			}
		}
	})
}

// BenchmarkFloor is the floor of a cache hit: one HMAC-SHA-256 of the
// secret and one lookup in a map of the same size as the cache.
func BenchmarkFloor(b *testing.B) {
	w := getWorld(b)
	for _, set := range sets(w) {
		b.Run(fmt.Sprintf("keys=%s", set.name), func(b *testing.B) {
			keys := set.keys
			m := make(map[[32]byte]*keyward.Key, len(keys))
			for i, s := range keys {
				m[w.hasher.Digest(s)] = &keyward.Key{ID: strconv.Itoa(i)}
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if m[w.hasher.Digest(keys[i])] == nil {
					b.Fatal("missing")
				}
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkVerifyCacheMiss is Service.Verify of a key the cache does not
// hold: the cache's fill from SQLite (one read transaction: the key with its
// owner, and the tenant). Every operation verifies another key.
func BenchmarkVerifyCacheMiss(b *testing.B) {
	w := getWorld(b)
	ctx := context.Background()
	cache := verifier.New(w.db, verifier.Options{})
	svc, rec := wire(w.db, w.scratch, w.hasher, cache)
	defer rec.Close(ctx)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		res, err := svc.Verify(ctx, keyward.VerifyInput{Key: w.secrets[i]})
		if err != nil || res.Code != keyward.CodeValid {
			b.Fatalf("Verify = %s, %v", res.Code, err)
		}
		if i++; i == w.n {
			b.StopTimer()
			cache.Purge()
			i = 0
			b.StartTimer()
		}
	}
	if s := cache.Stats(); s.Hits != 0 {
		b.Fatalf("%d cache hits in a miss benchmark", s.Hits)
	}
}

// BenchmarkVerifyStore is Service.Verify with no cache at all: the store
// answers every verification.
func BenchmarkVerifyStore(b *testing.B) {
	w := getWorld(b)
	ctx := context.Background()
	svc, rec := wire(w.db, w.scratch, w.hasher, nil)
	defer rec.Close(ctx)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		res, err := svc.Verify(ctx, keyward.VerifyInput{Key: w.secrets[i]})
		if err != nil || res.Code != keyward.CodeValid {
			b.Fatalf("Verify = %s, %v", res.Code, err)
		}
		if i++; i == w.n {
			i = 0
		}
	}
}

// BenchmarkStoreKeyByHash is the store's part of a miss alone: one read
// transaction with one KeyByHash, the baseline of the miss benchmarks.
func BenchmarkStoreKeyByHash(b *testing.B) {
	w := getWorld(b)
	ctx := context.Background()
	digests := make([][]byte, min(w.n, 100_000))
	for i := range digests {
		digests[i] = w.hasher.Hash(w.secrets[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		err := w.db.View(ctx, func(tx keyward.Tx) error {
			_, err := tx.KeyByHash(ctx, digests[i])
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		if i++; i == len(digests) {
			i = 0
		}
	}
}

// BenchmarkCacheHeap reports the heap that holding every seeded key in the
// cache takes (HeapInuse after GC, before and after the fill). Run it with
// -benchtime=1x: the figure is measured once per process, while the world
// is built.
func BenchmarkCacheHeap(b *testing.B) {
	w := getWorld(b)
	for b.Loop() {
	}
	b.ReportMetric(float64(w.heap)/float64(w.n), "heap-B/key")
	b.ReportMetric(float64(w.heap)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(w.live)/float64(w.n), "live-B/key")
	b.ReportMetric(float64(w.fill.Nanoseconds())/float64(w.n), "fill-ns/key")
	b.ReportMetric(0, "ns/op")
}
