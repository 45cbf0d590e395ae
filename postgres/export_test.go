package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// OpenMarking opens a store that writes every set revocation as a mark
// (markFrom 1) and leaves the marks pending until a read of the audit trail,
// or the test, settles them: for the tests of package postgres_test.
func OpenMarking(ctx context.Context, dsn string) (*DB, error) {
	return open(ctx, dsn, options{markFrom: 1, settlerOff: true})
}

// SettleChunk writes up to n keys of the tenant's earliest pending mark.
func (db *DB) SettleChunk(ctx context.Context, tenantID string, n int) error {
	return pgx.BeginFunc(ctx, db.pool, func(pt pgx.Tx) error {
		_, err := (&tx{tx: pt, write: true, fold: db.fold}).settleChunk(ctx, tenantID, n)
		return err
	})
}
