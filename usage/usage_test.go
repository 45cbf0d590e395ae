package usage

// The recorder against a real SQLite store, with a fake clock: what Flush
// writes, what survives a failed flush, and when a key's use is a spike.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testclock"
	"github.com/keyward/keyward/sqlite"
)

// t0 is where every fake clock starts: the start of an hour.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fixture is a real SQLite store with one tenant and one owner.
type fixture struct {
	db     *sqlite.DB
	tenant *keyward.Tenant
	owner  *keyward.User
	clk    *testclock.Clock // shared by the "service" (the times passed to Used and Count) and the recorder (WithClock)
}

func mustFixture(tb testing.TB) *fixture {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "keyward.db"))
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	f := &fixture{db: db, clk: testclock.New(t0)}
	f.tenant = &keyward.Tenant{ID: mustID(tb, keyward.PrefixTenant), Name: "Acme", CreatedAt: t0, Settings: keyward.DefaultSettings()}
	f.owner = &keyward.User{ID: mustID(tb, keyward.PrefixUser), TenantID: f.tenant.ID, Email: "ada@acme.example",
		Name: "Ada", Kind: keyward.KindUser, Roles: []string{keyward.RoleDeveloper}, Licensed: true, CreatedAt: t0, UpdatedAt: t0}
	f.update(tb, func(ctx context.Context, tx keyward.Tx) error {
		if err := tx.CreateTenant(ctx, f.tenant); err != nil {
			return err
		}
		return tx.CreateUser(ctx, f.owner)
	})
	return f
}

func mustID(tb testing.TB, prefix string) string {
	tb.Helper()
	id, err := keyward.NewID(rand.Reader, prefix)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func (f *fixture) update(tb testing.TB, fn func(ctx context.Context, tx keyward.Tx) error) {
	tb.Helper()
	ctx := context.Background()
	if err := f.db.Update(ctx, func(tx keyward.Tx) error { return fn(ctx, tx) }); err != nil {
		tb.Fatalf("Update: %v", err)
	}
}

// key stores a new key of the fixture's owner and returns it as read back.
func (f *fixture) key(tb testing.TB, name string) *keyward.Key {
	tb.Helper()
	hash := make([]byte, 32)
	rand.Read(hash)
	k := &keyward.Key{ID: mustID(tb, keyward.PrefixKey), TenantID: f.tenant.ID, Name: name, OwnerID: f.owner.ID,
		Role: keyward.KeyRoleAdmin, Scopes: []string{}, Meta: json.RawMessage(`{}`), Hash: hash, Start: "kw_Ab3d",
		CreatedAt: t0, UpdatedAt: t0}
	f.update(tb, func(ctx context.Context, tx keyward.Tx) error { return tx.CreateKey(ctx, k) })
	return f.stored(tb, k.ID)
}

func (f *fixture) stored(tb testing.TB, id string) *keyward.Key {
	tb.Helper()
	var k *keyward.Key
	ctx := context.Background()
	err := f.db.View(ctx, func(tx keyward.Tx) (err error) {
		k, err = tx.KeyByID(ctx, f.tenant.ID, id)
		return err
	})
	if err != nil {
		tb.Fatalf("KeyByID(%s): %v", id, err)
	}
	return k
}

// counts reads a key's stored counts of one day from t0's as hour → code → n.
func (f *fixture) counts(tb testing.TB, id string) map[time.Time]map[string]int64 {
	tb.Helper()
	var rows []keyward.UsageCount
	ctx := context.Background()
	err := f.db.View(ctx, func(tx keyward.Tx) (err error) {
		rows, err = tx.KeyUsage(ctx, f.tenant.ID, id, t0.Add(-24*time.Hour), t0.Add(24*time.Hour))
		return err
	})
	if err != nil {
		tb.Fatalf("KeyUsage(%s): %v", id, err)
	}
	out := map[time.Time]map[string]int64{}
	for _, r := range rows {
		if out[r.Hour] == nil {
			out[r.Hour] = map[string]int64{}
		}
		out[r.Hour][r.Code] += r.Count
	}
	return out
}

// discard is a logger for recorders whose log no test reads.
var discard = slog.New(slog.DiscardHandler)

// newRecorder starts a recorder on store with the fixture's clock and an
// interval long enough that only the test's own Flush calls write.
func (f *fixture) newRecorder(tb testing.TB, store keyward.Store, opts ...Option) *Recorder {
	tb.Helper()
	r := New(store, discard, time.Hour, append([]Option{WithClock(f.clk.Now)}, opts...)...)
	tb.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func mustFlush(tb testing.TB, r *Recorder) {
	tb.Helper()
	if err := r.Flush(context.Background()); err != nil {
		tb.Fatalf("Flush: %v", err)
	}
}

func wantLastUsed(tb testing.TB, k *keyward.Key, want *time.Time) {
	tb.Helper()
	switch {
	case want == nil && k.LastUsedAt != nil:
		tb.Errorf("%s: last_used_at %v, want null", k.Name, *k.LastUsedAt)
	case want != nil && (k.LastUsedAt == nil || !k.LastUsedAt.Equal(*want)):
		tb.Errorf("%s: last_used_at %v, want %v", k.Name, k.LastUsedAt, *want)
	}
}

func wantCounts(tb testing.TB, what string, got, want map[time.Time]map[string]int64) {
	tb.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		tb.Errorf("%s: stored counts %v, want %v", what, got, want)
	}
}

func ptr[T any](v T) *T { return &v }

func TestFlushWritesLastUsedAndCounts(t *testing.T) {
	f := mustFixture(t)
	a, b, idle := f.key(t, "a"), f.key(t, "b"), f.key(t, "idle")
	r := f.newRecorder(t, f.db)
	h10, h11 := t0, t0.Add(time.Hour)

	// Nothing noted: a flush writes nothing and does not fail.
	mustFlush(t, r)
	wantLastUsed(t, f.stored(t, a.ID), nil)

	// Uses out of order: the latest wins in memory. A VALID verification
	// is a use too; no other outcome is.
	r.Used(a.ID, t0.Add(30*time.Second))
	r.Used(a.ID, t0.Add(10*time.Second))
	r.Used(b.ID, t0.Add(time.Minute))
	for range 3 {
		r.Count(a, keyward.CodeValid, t0.Add(5*time.Second))
	}
	r.Count(a, keyward.CodeRateLimited, t0.Add(59*time.Minute+59*time.Second)) // last second of 10:00
	r.Count(a, keyward.CodeValid, t0.Add(time.Hour))                           // first of 11:00
	r.Count(b, keyward.CodeInactive, t0.Add(90*time.Minute))
	r.Count(idle, keyward.CodeRevoked, t0.Add(2*time.Minute))

	// Nothing reaches the store before a flush.
	wantLastUsed(t, f.stored(t, a.ID), nil)
	wantCounts(t, "before the flush", f.counts(t, a.ID), map[time.Time]map[string]int64{})

	mustFlush(t, r)
	wantLastUsed(t, f.stored(t, a.ID), ptr(t0.Add(time.Hour))) // the VALID count at 11:00
	wantLastUsed(t, f.stored(t, b.ID), ptr(t0.Add(time.Minute)))
	wantLastUsed(t, f.stored(t, idle.ID), nil) // only refused
	wantCounts(t, "a", f.counts(t, a.ID), map[time.Time]map[string]int64{
		h10: {keyward.CodeValid: 3, keyward.CodeRateLimited: 1}, h11: {keyward.CodeValid: 1}})
	wantCounts(t, "b", f.counts(t, b.ID), map[time.Time]map[string]int64{h11: {keyward.CodeInactive: 1}})
	wantCounts(t, "idle", f.counts(t, idle.ID), map[time.Time]map[string]int64{h10: {keyward.CodeRevoked: 1}})

	// A second flush with nothing new changes nothing: no count is written twice.
	mustFlush(t, r)
	wantCounts(t, "a after an empty flush", f.counts(t, a.ID), map[time.Time]map[string]int64{
		h10: {keyward.CodeValid: 3, keyward.CodeRateLimited: 1}, h11: {keyward.CodeValid: 1}})

	// An older use flushed later never moves last_used_at back; counts add up.
	r.Used(a.ID, t0.Add(time.Second))
	r.Count(a, keyward.CodeValid, t0.Add(2*time.Second))
	mustFlush(t, r)
	wantLastUsed(t, f.stored(t, a.ID), ptr(t0.Add(time.Hour)))
	wantCounts(t, "a after more uses", f.counts(t, a.ID), map[time.Time]map[string]int64{
		h10: {keyward.CodeValid: 4, keyward.CodeRateLimited: 1}, h11: {keyward.CodeValid: 1}})

	// A newer one moves it forward.
	r.Used(a.ID, t0.Add(2*time.Hour))
	mustFlush(t, r)
	wantLastUsed(t, f.stored(t, a.ID), ptr(t0.Add(2*time.Hour)))
}

func TestFlushDropsDeletedKeys(t *testing.T) {
	f := mustFixture(t)
	gone, kept := f.key(t, "gone"), f.key(t, "kept")
	r := f.newRecorder(t, f.db)
	r.Used(gone.ID, t0)
	r.Count(gone, keyward.CodeValid, t0)
	r.Used(kept.ID, t0)
	r.Count(kept, keyward.CodeValid, t0)
	f.update(t, func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteKey(ctx, f.tenant.ID, gone.ID) })

	// The deleted key's use is dropped; the batch is not refused for it.
	mustFlush(t, r)
	wantLastUsed(t, f.stored(t, kept.ID), ptr(t0))
	wantCounts(t, "kept", f.counts(t, kept.ID), map[time.Time]map[string]int64{t0: {keyward.CodeValid: 1}})
	// And it is not retried forever: the next flush has nothing to write.
	_, pending, counts := r.held()
	if pending != 0 || counts != 0 {
		t.Errorf("after the flush %d uses and %d counts are still pending", pending, counts)
	}
}

func TestCloseFlushes(t *testing.T) {
	f := mustFixture(t)
	k := f.key(t, "k")
	r := New(f.db, discard, time.Hour, WithClock(f.clk.Now))
	r.Used(k.ID, t0.Add(time.Second))
	r.Count(k, keyward.CodeValid, t0.Add(time.Second))
	r.Count(k, keyward.CodeExpired, t0.Add(time.Second))
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantLastUsed(t, f.stored(t, k.ID), ptr(t0.Add(time.Second)))
	wantCounts(t, "after Close", f.counts(t, k.ID), map[time.Time]map[string]int64{
		t0: {keyward.CodeValid: 1, keyward.CodeExpired: 1}})
	// Closing again is harmless and writes nothing twice.
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	wantCounts(t, "after a second Close", f.counts(t, k.ID), map[time.Time]map[string]int64{
		t0: {keyward.CodeValid: 1, keyward.CodeExpired: 1}})
}

// TestBackgroundFlush: without any Flush call, the loop writes within its interval.
func TestBackgroundFlush(t *testing.T) {
	f := mustFixture(t)
	k := f.key(t, "k")
	r := New(f.db, discard, 10*time.Millisecond, WithClock(f.clk.Now))
	t.Cleanup(func() { r.Close(context.Background()) })
	r.Used(k.ID, t0)
	r.Count(k, keyward.CodeValid, t0)
	deadline := time.Now().Add(10 * time.Second)
	for f.stored(t, k.ID).LastUsedAt == nil {
		if time.Now().After(deadline) {
			t.Fatal("last_used_at not written 10 s after use")
		}
		time.Sleep(5 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for len(f.counts(t, k.ID)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("counts not written 10 s after use")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantCounts(t, "background", f.counts(t, k.ID), map[time.Time]map[string]int64{t0: {keyward.CodeValid: 1}})
}

// flakyStore is the real store whose next Update calls fail without running.
type flakyStore struct {
	keyward.Store
	failures atomic.Int32
}

var errFlaky = errors.New("database is locked (flaky)")

func (s *flakyStore) Update(ctx context.Context, fn func(keyward.Tx) error) error {
	if s.failures.Add(-1) >= 0 {
		return errFlaky
	}
	return s.Store.Update(ctx, fn)
}

func TestFailedFlushKeepsTheBatch(t *testing.T) {
	f := mustFixture(t)
	a, b := f.key(t, "a"), f.key(t, "b")
	store := &flakyStore{Store: f.db}
	r := f.newRecorder(t, store)

	r.Used(a.ID, t0.Add(20*time.Second))
	r.Count(a, keyward.CodeValid, t0.Add(20*time.Second))
	r.Count(a, keyward.CodeValid, t0.Add(21*time.Second))
	r.Count(b, keyward.CodeRevoked, t0.Add(22*time.Second))

	store.failures.Store(2)
	for i := range 2 {
		if err := r.Flush(context.Background()); !errors.Is(err, errFlaky) {
			t.Fatalf("flush %d on a failing store: %v, want the store's error", i+1, err)
		}
	}
	wantLastUsed(t, f.stored(t, a.ID), nil)
	wantCounts(t, "after failed flushes", f.counts(t, a.ID), map[time.Time]map[string]int64{})

	// Newer uses merge with the kept batch: later last use wins, counts add.
	r.Used(a.ID, t0.Add(10*time.Second)) // older than the kept one
	r.Used(b.ID, t0.Add(40*time.Second))
	r.Count(a, keyward.CodeValid, t0.Add(15*time.Second)) // a use, older than the kept one too
	r.Count(a, keyward.CodeRateLimited, t0.Add(31*time.Second))
	mustFlush(t, r)
	wantLastUsed(t, f.stored(t, a.ID), ptr(t0.Add(21*time.Second))) // the kept batch's VALID count at :21
	wantLastUsed(t, f.stored(t, b.ID), ptr(t0.Add(40*time.Second)))
	wantCounts(t, "a", f.counts(t, a.ID), map[time.Time]map[string]int64{
		t0: {keyward.CodeValid: 3, keyward.CodeRateLimited: 1}})
	wantCounts(t, "b", f.counts(t, b.ID), map[time.Time]map[string]int64{t0: {keyward.CodeRevoked: 1}})

	// Once written, nothing is written again.
	mustFlush(t, r)
	wantCounts(t, "a after another flush", f.counts(t, a.ID), map[time.Time]map[string]int64{
		t0: {keyward.CodeValid: 3, keyward.CodeRateLimited: 1}})
}

// A flush of many keys is several transactions. When one fails, what the
// ones before it wrote stays written, and the rest is kept for the next
// flush: in the end every count is written once.
func TestFlushInChunks(t *testing.T) {
	f := mustFixture(t)
	var keys []*keyward.Key
	for i := range 7 {
		keys = append(keys, f.key(t, fmt.Sprintf("k%d", i)))
	}
	store := &countingStore{Store: f.db, failAt: 2}
	r := f.newRecorder(t, store)
	r.chunk = 3
	for i, k := range keys {
		r.Count(k, keyward.CodeValid, t0.Add(time.Duration(i)*time.Second))
	}
	if err := r.Flush(context.Background()); !errors.Is(err, errFlaky) {
		t.Fatalf("flush with a failing second chunk: %v, want the store's error", err)
	}
	if got := store.calls.Load(); got != 2 {
		t.Errorf("the failing flush made %d transactions, want 2 (the first chunk, then the failing one)", got)
	}
	written := 0
	for _, k := range keys {
		if f.stored(t, k.ID).LastUsedAt != nil {
			written++
		}
	}
	if written != 3 {
		t.Errorf("after the failed flush %d keys written, want the first chunk's 3", written)
	}
	mustFlush(t, r)
	if got := store.calls.Load(); got != 4 {
		t.Errorf("%d transactions in all, want 4 (the retry wrote the other 4 keys in 2 chunks)", got)
	}
	for i, k := range keys {
		wantLastUsed(t, f.stored(t, k.ID), ptr(t0.Add(time.Duration(i)*time.Second)))
		wantCounts(t, k.Name, f.counts(t, k.ID), map[time.Time]map[string]int64{t0: {keyward.CodeValid: 1}})
	}
}

// countingStore counts Update calls and fails the failAt-th one.
type countingStore struct {
	keyward.Store
	calls  atomic.Int32
	failAt int32
}

func (s *countingStore) Update(ctx context.Context, fn func(keyward.Tx) error) error {
	if s.calls.Add(1) == s.failAt {
		return errFlaky
	}
	return s.Store.Update(ctx, fn)
}

func TestCloseOnAFailingStoreReports(t *testing.T) {
	f := mustFixture(t)
	k := f.key(t, "k")
	store := &flakyStore{Store: f.db}
	store.failures.Store(1)
	r := New(store, discard, time.Hour, WithClock(f.clk.Now))
	r.Count(k, keyward.CodeValid, t0)
	if err := r.Close(context.Background()); !errors.Is(err, errFlaky) {
		t.Fatalf("Close on a failing store: %v, want its error", err)
	}
	// The batch is still there for a last try.
	mustFlush(t, r)
	wantCounts(t, "after the retry", f.counts(t, k.ID), map[time.Time]map[string]int64{t0: {keyward.CodeValid: 1}})
}

// TestConcurrentCountsAreNeverLost: counts noted while flushes run all arrive once.
func TestConcurrentCountsAreNeverLost(t *testing.T) {
	f := mustFixture(t)
	k := f.key(t, "k")
	store := &flakyStore{Store: f.db}
	r := f.newRecorder(t, store)
	const workers, each = 8, 250
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				at := t0.Add(time.Duration(w*each+i) * time.Millisecond)
				r.Used(k.ID, at)
				r.Count(k, keyward.CodeValid, at)
			}
		})
	}
	stop := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%3 == 0 {
				store.failures.Store(1) // every third flush fails and keeps its batch
			}
			r.Flush(context.Background())
		}
	}()
	wg.Wait()
	close(stop)
	<-flushed
	store.failures.Store(0)
	mustFlush(t, r)
	wantCounts(t, "after concurrent use", f.counts(t, k.ID), map[time.Time]map[string]int64{t0: {keyward.CodeValid: workers * each}})
	wantLastUsed(t, f.stored(t, k.ID), ptr(t0.Add((workers*each-1)*time.Millisecond)))
}

// --- spikes

// spikeLog collects the spikes a recorder reports.
type spikeLog struct {
	mu    sync.Mutex
	got   []keyward.UsageSpike
	calls int
	err   error // returned by report
}

func (s *spikeLog) report(_ context.Context, spikes []keyward.UsageSpike) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.got = append(s.got, spikes...)
	return s.err
}

func (s *spikeLog) spikes() []keyward.UsageSpike {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]keyward.UsageSpike(nil), s.got...)
}

// testSpikes is the configuration of the brief: ten times a key's average, at
// least 100 a minute, after ten minutes, once an hour.
var testSpikes = SpikeConfig{MinPerMinute: 100, Factor: 10, Warmup: 10, Cooldown: time.Hour}

// spikeRun drives one recorder minute by minute as the service and the
// background loop would: uses spread over each minute, a flush every 15 s.
type spikeRun struct {
	t   *testing.T
	f   *fixture
	r   *Recorder
	log *spikeLog
}

func newSpikeRun(t *testing.T, cfg SpikeConfig) *spikeRun {
	f := mustFixture(t)
	log := &spikeLog{}
	return &spikeRun{t: t, f: f, log: log, r: f.newRecorder(t, f.db, WithSpikes(cfg, log.report))}
}

// minute has each key of uses used n times during minute m after t0.
func (s *spikeRun) minute(m int, uses map[*keyward.Key]int) {
	s.t.Helper()
	start := t0.Add(time.Duration(m) * time.Minute)
	for q := range 4 {
		s.f.clk.Set(start.Add(time.Duration(q) * 15 * time.Second))
		for k, n := range uses {
			for i := q * n / 4; i < (q+1)*n/4; i++ {
				s.r.Count(k, keyward.CodeValid, s.f.clk.Now().Add(time.Duration(i%15)*time.Second))
			}
		}
		mustFlush(s.t, s.r)
	}
}

// at sets the clock and flushes, as the background loop would.
func (s *spikeRun) at(m int) {
	s.t.Helper()
	s.f.clk.Set(t0.Add(time.Duration(m) * time.Minute))
	mustFlush(s.t, s.r)
}

func (s *spikeRun) wantSpikes(what string, n int) []keyward.UsageSpike {
	s.t.Helper()
	got := s.log.spikes()
	if len(got) != n {
		for _, sp := range got {
			s.t.Logf("spike: key %s minute %s count %d average %.2f", sp.Key.Name, sp.Minute.Format("15:04"), sp.Count, sp.Average)
		}
		s.t.Fatalf("%s: %d spikes reported, want %d", what, len(got), n)
	}
	return got
}

func wantSpike(tb testing.TB, sp keyward.UsageSpike, k *keyward.Key, minute int, count int64, avg float64) {
	tb.Helper()
	if sp.Key == nil || sp.Key.ID != k.ID {
		tb.Errorf("spike of key %v, want %s", sp.Key, k.ID)
	}
	if want := t0.Add(time.Duration(minute) * time.Minute); !sp.Minute.Equal(want) || sp.Minute.Location() != time.UTC {
		tb.Errorf("spike minute %v, want %v (UTC)", sp.Minute, want)
	}
	if sp.Count != count {
		tb.Errorf("spike count %d, want %d", sp.Count, count)
	}
	if math.Abs(sp.Average-avg) > avg*0.05 {
		tb.Errorf("spike average %.2f per minute, want about %.2f", sp.Average, avg)
	}
}

func TestSpikeAfterSteadyUse(t *testing.T) {
	s := newSpikeRun(t, testSpikes)
	k := s.f.key(t, "steady then burst")
	for m := range 12 {
		s.minute(m, map[*keyward.Key]int{k: 10})
	}
	s.wantSpikes("during steady use", 0)
	s.minute(12, map[*keyward.Key]int{k: 500})
	s.wantSpikes("while the burst minute has not ended", 0)

	s.at(13) // the minute ends: the next flush reports it
	got := s.wantSpikes("after the burst", 1)
	wantSpike(t, got[0], k, 12, 500, 10)
	if got[0].Key.TenantID != s.f.tenant.ID || got[0].Key.OwnerID != s.f.owner.ID || got[0].Key.Name != k.Name {
		t.Errorf("spike's key %+v lacks what its event needs", got[0].Key)
	}

	// Reported once, whatever happens next.
	for m := 14; m < 20; m++ {
		s.at(m)
	}
	s.wantSpikes("later flushes", 1)
	// The counts went to the store as usual.
	wantCounts(t, "burst", s.f.counts(t, k.ID), map[time.Time]map[string]int64{t0: {keyward.CodeValid: 12*10 + 500}})
}

// TestSpikeEndedByUse: a use in the next minute ends the burst minute too.
func TestSpikeEndedByUse(t *testing.T) {
	s := newSpikeRun(t, testSpikes)
	k := s.f.key(t, "k")
	for m := range 10 {
		s.minute(m, map[*keyward.Key]int{k: 20})
	}
	s.f.clk.Set(t0.Add(10 * time.Minute))
	for range 1000 {
		s.r.Count(k, keyward.CodeValid, t0.Add(10*time.Minute+30*time.Second))
	}
	s.r.Count(k, keyward.CodeValid, t0.Add(11*time.Minute))
	s.f.clk.Set(t0.Add(11*time.Minute + time.Second))
	mustFlush(t, s.r)
	got := s.wantSpikes("after the burst", 1)
	wantSpike(t, got[0], k, 10, 1000, 20)
}

func TestNoSpikeForSteadyHighUse(t *testing.T) {
	s := newSpikeRun(t, testSpikes)
	k := s.f.key(t, "busy from the start")
	for m := range 30 {
		s.minute(m, map[*keyward.Key]int{k: 500})
	}
	s.at(30)
	s.wantSpikes("steady 500 a minute", 0)
	// Eight times its rate is below the factor; twelve times is above it.
	s.minute(30, map[*keyward.Key]int{k: 4000})
	s.at(31)
	s.wantSpikes("eight times the rate", 0)
	for m := 31; m < 60; m++ {
		s.minute(m, map[*keyward.Key]int{k: 500})
	}
	s.minute(60, map[*keyward.Key]int{k: 6000})
	s.at(61)
	s.wantSpikes("twelve times the rate", 1)
}

// TestNoSpikeBelowTheFactorAfterWarmup: right after the warmup the average
// is the key's real rate, so eight times it is not a spike.
func TestNoSpikeBelowTheFactorAfterWarmup(t *testing.T) {
	s := newSpikeRun(t, testSpikes)
	k := s.f.key(t, "k")
	for m := range 10 {
		s.minute(m, map[*keyward.Key]int{k: 50})
	}
	s.minute(10, map[*keyward.Key]int{k: 400})
	s.at(11)
	s.wantSpikes("eight times the rate", 0)
	s.minute(11, map[*keyward.Key]int{k: 50})
	s.minute(12, map[*keyward.Key]int{k: 1000})
	s.at(13)
	got := s.wantSpikes("about thirteen times the rate", 1)
	wantSpike(t, got[0], k, 12, 1000, 50+0.1*350*0.9) // the 400 minute raised the average
}

func TestNoSpikeDuringWarmup(t *testing.T) {
	s := newSpikeRun(t, testSpikes)
	k := s.f.key(t, "new")
	for m := range 9 {
		s.minute(m, map[*keyward.Key]int{k: 1})
	}
	s.minute(9, map[*keyward.Key]int{k: 5000}) // the key's tenth minute
	s.at(10)
	s.wantSpikes("a burst in the warmup", 0)
}

func TestNoSpikeBelowTheMinimum(t *testing.T) {
	s := newSpikeRun(t, testSpikes)
	k := s.f.key(t, "quiet")
	for m := range 15 {
		s.minute(m, map[*keyward.Key]int{k: 1})
	}
	s.minute(15, map[*keyward.Key]int{k: 99}) // 99 times its rate, but under 100 a minute
	s.at(16)
	s.wantSpikes("99 in a minute", 0)
}

func TestSpikeCooldown(t *testing.T) {
	s := newSpikeRun(t, testSpikes)
	k, other := s.f.key(t, "k"), s.f.key(t, "other")
	for m := range 12 {
		s.minute(m, map[*keyward.Key]int{k: 10, other: 10})
	}
	s.minute(12, map[*keyward.Key]int{k: 500, other: 10})
	s.at(13)
	s.wantSpikes("first burst", 1)

	// Far above the average again, 18 minutes later: within the hour, not reported.
	for m := 13; m < 30; m++ {
		s.minute(m, map[*keyward.Key]int{k: 10, other: 10})
	}
	s.minute(30, map[*keyward.Key]int{k: 5000, other: 500}) // the other key's spike is its own
	s.at(31)
	got := s.wantSpikes("second burst within the cooldown", 2)
	wantSpike(t, got[1], other, 30, 500, 10)

	// An hour after the first reported one, a spike is reported again.
	for m := 31; m < 72; m++ {
		s.minute(m, map[*keyward.Key]int{k: 10, other: 10})
	}
	s.minute(72, map[*keyward.Key]int{k: 5000, other: 10})
	s.at(73)
	got = s.wantSpikes("a burst after the cooldown", 3)
	if got[2].Key.ID != k.ID || !got[2].Minute.Equal(t0.Add(72*time.Minute)) || got[2].Count != 5000 {
		t.Errorf("third spike: key %s minute %v count %d", got[2].Key.Name, got[2].Minute, got[2].Count)
	}
}

func TestIdleKeysAreForgotten(t *testing.T) {
	s := newSpikeRun(t, testSpikes)
	busy, idle := s.f.key(t, "busy"), s.f.key(t, "idle")
	for m := range 20 {
		uses := map[*keyward.Key]int{busy: 50}
		if m < 5 {
			uses[idle] = 200
		}
		s.minute(m, uses)
	}
	tracked := func() map[string]bool {
		out := map[string]bool{}
		for i := range s.r.shards {
			sh := &s.r.shards[i]
			sh.mu.Lock()
			for id := range sh.rates {
				out[id] = true
			}
			sh.mu.Unlock()
		}
		return out
	}
	if got := tracked(); !got[idle.ID] || !got[busy.ID] {
		t.Fatalf("after 15 idle minutes: tracked %v, want both keys", got)
	}
	// The idle key was last used in minute 4: gone once an hour has passed;
	// the busy one, last used in minute 19, is still watched.
	s.at(4 + 61)
	if got := tracked(); got[idle.ID] || !got[busy.ID] {
		t.Errorf("an hour after the idle key's last use: tracked %v, want only the busy key %s", got, busy.ID)
	}
	s.at(19 + 61)
	if got := tracked(); len(got) != 0 {
		t.Errorf("after every key idled an hour: %d keys still tracked", len(got))
	}
	s.wantSpikes("idle keys", 0)
}

// TestSpikeReportFailure: the counts are written once, and Flush says the
// report failed.
func TestSpikeReportFailure(t *testing.T) {
	s := newSpikeRun(t, testSpikes)
	k := s.f.key(t, "k")
	for m := range 11 {
		s.minute(m, map[*keyward.Key]int{k: 10})
	}
	s.minute(11, map[*keyward.Key]int{k: 300})
	s.log.err = errors.New("events table gone")
	s.f.clk.Set(t0.Add(12 * time.Minute))
	if err := s.r.Flush(context.Background()); err == nil || err.Error() != "events table gone" {
		t.Fatalf("Flush with a failing report: %v, want its error", err)
	}
	s.log.err = nil
	mustFlush(t, s.r)
	wantCounts(t, "counts", s.f.counts(t, k.ID), map[time.Time]map[string]int64{t0: {keyward.CodeValid: 11*10 + 300}})
}

// TestNoSpikeWatchWithoutConfig: without WithSpikes nothing is tracked per key.
func TestNoSpikeWatchWithoutConfig(t *testing.T) {
	f := mustFixture(t)
	k := f.key(t, "k")
	r := f.newRecorder(t, f.db)
	for i := range 1000 {
		r.Count(k, keyward.CodeValid, t0.Add(time.Duration(i)*time.Second))
	}
	f.clk.Set(t0.Add(time.Hour))
	mustFlush(t, r)
	if n, _, _ := r.held(); n != 0 {
		t.Errorf("%d keys tracked for spikes without WithSpikes", n)
	}
}

// held counts what the recorder holds: keys tracked, and uses and counts
// waiting to be written.
func (r *Recorder) held() (rates, pending, counts int) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		rates, pending, counts = rates+len(sh.rates), pending+len(sh.pending), counts+len(sh.counts)
		sh.mu.Unlock()
	}
	return rates, pending, counts
}
