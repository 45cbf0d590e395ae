package main

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/keyward/keyward/postgres"
)

// leader decides whether this node runs the cluster's background work. On
// SQLite there is one node and it always leads; on PostgreSQL the node that
// holds an advisory lock leads, and when it dies its lock goes with its
// connection, so the next node to ask takes over.
type leader struct {
	db   *postgres.DB // nil: a single node
	log  *slog.Logger
	lock *postgres.Lock
	now  atomic.Bool // leading, as of the last check
}

// leading checks (and if free, takes) the leadership.
func (l *leader) leading(ctx context.Context) bool {
	if l.db == nil {
		l.now.Store(true)
		return true
	}
	if l.lock != nil {
		if l.lock.Held(ctx) {
			return true
		}
		l.lock.Release()
		l.lock = nil
		l.now.Store(false)
		l.log.Warn("lost the leadership of background work")
	}
	lock, err := l.db.TryLock(ctx, postgres.LeaderLockID)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Error("cannot ask for the leadership of background work", "err", err)
		}
		return false
	}
	if lock == nil {
		return false
	}
	l.lock = lock
	l.now.Store(true)
	l.log.Info("leading background work (expiry sweeps)")
	return true
}

// release gives the leadership back, for a clean stop.
func (l *leader) release() {
	if l.lock != nil {
		l.lock.Release()
		l.lock = nil
	}
	l.now.Store(false)
}
