// Package settle is what the SQLite and PostgreSQL stores share of settling
// revocation marks (see sqlite/revocation.go): the background loop that
// settles them, the loop of chunk transactions that settles a tenant's (or
// every tenant's), and the read that waits for a tenant's marks to be
// settled and then runs again.
package settle

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// Retry is how long the background loop waits after a failure before trying
// again; Poll, how often it looks for marks that another process or node
// wrote (or left when it stopped).
const (
	Retry = time.Second
	Poll  = time.Minute
)

// Chunk settles the next chunk of the earliest pending mark of the tenant
// (of any tenant if tenantID is ""), in a transaction of its own. It reports
// whether a mark was pending and the tenants whose mark it finished.
type Chunk func(ctx context.Context, tenantID string) (more bool, finished []string, err error)

// Settler settles a store's marks: in the background (Start) and on demand
// (Settle).
type Settler struct {
	chunk Chunk
	log   atomic.Pointer[slog.Logger]
	wake  chan struct{}
	stop  context.CancelFunc
	done  chan struct{}
}

// Start starts the background loop: at once (marks that a stopped process
// left), after each Wake, every Poll, and Retry after a failure, until
// Close. With off (tests) the loop settles nothing: marks stay pending
// until a read or the test settles them.
func Start(chunk Chunk, off bool) *Settler {
	ctx, stop := context.WithCancel(context.Background())
	s := &Settler{chunk: chunk, wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	go s.loop(ctx, off)
	return s
}

func (s *Settler) loop(ctx context.Context, off bool) {
	defer close(s.done)
	poll := time.NewTicker(Poll)
	defer poll.Stop()
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-poll.C:
		case <-retry.C:
		}
		if off {
			continue
		}
		if err := s.Settle(ctx, ""); err != nil && ctx.Err() == nil {
			s.Logger().Error("settling revocation marks failed; retrying", "err", err, "in", Retry)
			retry.Reset(Retry)
		}
	}
}

// Settle settles the pending marks of the tenant (of every tenant if
// tenantID is ""), a chunk a transaction, until none is left.
func (s *Settler) Settle(ctx context.Context, tenantID string) error {
	for {
		more, finished, err := s.chunk(ctx, tenantID)
		if err != nil || !more {
			return err
		}
		for _, tenant := range finished {
			s.Logger().Info("revocation mark settled", "tenant", tenant)
		}
	}
}

// Wake asks the background loop to look for marks now.
func (s *Settler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close stops the background loop and waits for it; marks it has not
// settled stay pending, for the next Start.
func (s *Settler) Close() {
	s.stop()
	<-s.done
}

// SetLogger is where the settler reports; by default, nowhere.
func (s *Settler) SetLogger(l *slog.Logger) { s.log.Store(l) }

// Logger is the settler's logger.
func (s *Settler) Logger() *slog.Logger {
	if l := s.log.Load(); l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}

// Unsettled is what a read-only transaction answers when it needs the
// tenant's marks settled first: a read transaction cannot write them.
type Unsettled struct{ TenantID string }

func (e *Unsettled) Error() string {
	return "the revocation marks of tenant " + e.TenantID + " are not settled"
}

// Read runs read; when it answers Unsettled, it settles that tenant's marks
// and runs read again.
func (s *Settler) Read(ctx context.Context, read func() error) error {
	for {
		err := read()
		var u *Unsettled
		if !errors.As(err, &u) {
			return err
		}
		if err := s.Settle(ctx, u.TenantID); err != nil {
			return err
		}
	}
}
