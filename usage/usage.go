// Package usage keeps key usage off the verification hot path: uses are
// noted in memory and written to the store in batches, and on Close.
package usage

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/keyward/keyward"
)

// DefaultInterval keeps last_used_at within the contract's 10 seconds.
const DefaultInterval = 2 * time.Second

// Recorder batches last-used times per key.
type Recorder struct {
	store    keyward.Store
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	pending map[string]time.Time

	flushMu sync.Mutex // one flush at a time, so a batch is never written out of order
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New starts a recorder that flushes every interval until Close.
func New(store keyward.Store, log *slog.Logger, interval time.Duration) *Recorder {
	if interval <= 0 {
		interval = DefaultInterval
	}
	r := &Recorder{store: store, log: log, interval: interval, pending: map[string]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop()
	return r
}

// Used notes one use of a key; it never blocks on the store.
func (r *Recorder) Used(keyID string, at time.Time) {
	r.mu.Lock()
	if prev, ok := r.pending[keyID]; !ok || at.After(prev) {
		r.pending[keyID] = at
	}
	r.mu.Unlock()
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
	r.mu.Lock()
	batch := r.pending
	r.pending = make(map[string]time.Time, len(batch))
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := r.store.Update(ctx, func(tx keyward.Tx) error { return tx.TouchKeys(ctx, batch) })
	if err != nil {
		for id, at := range batch {
			r.Used(id, at)
		}
	}
	return err
}

// Close stops the background loop and writes what is pending.
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	return r.Flush(ctx)
}
