package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// LeaderLockID names the advisory lock whose holder runs a cluster's
// background work (expiry sweeps). Any fixed number unique to Keyward.
const LeaderLockID int64 = 0x6b77_6c65_6164 // "kwlead"

// Lock is a session-level advisory lock held on a connection of its own:
// it lasts until Release, or until that connection dies with its node, so
// a dead leader is replaced by the next node that asks.
type Lock struct {
	conn *pgxpool.Conn
	id   int64
}

// TryLock takes the advisory lock id without waiting; nil means another
// session holds it.
func (db *DB) TryLock(ctx context.Context, id int64) (*Lock, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: try lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, id).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("postgres: try lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, nil
	}
	return &Lock{conn: conn, id: id}, nil
}

// Held reports whether the lock is still ours: its connection answers and
// the lock is still granted to that session.
func (l *Lock) Held(ctx context.Context) bool {
	var held bool
	err := l.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
		WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
		AND ((classid::bigint << 32) | objid::bigint) = $1)`, l.id).Scan(&held)
	return err == nil && held
}

// Release gives the lock back (or drops the dead connection that held it).
func (l *Lock) Release() {
	ctx := context.Background()
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.id); err != nil {
		// The session is gone or broken: close it rather than pool it.
		l.conn.Conn().Close(ctx)
	}
	l.conn.Release()
}
