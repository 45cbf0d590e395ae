// Package postgres is Keyward's store for several nodes on one PostgreSQL,
// through jackc/pgx/v5 and a pgxpool connection pool.
//
// Write transactions (Update) run at READ COMMITTED; Tx.LockUser takes a row
// lock on the owner (SELECT … FOR NO KEY UPDATE) that is held until commit,
// so "lock the owner, count its keys, insert one" is atomic across
// connections and nodes. Read transactions (View) are READ ONLY at REPEATABLE
// READ: one snapshot for the whole transaction.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/settle"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// defaultMaxConns is the pool's size unless the URL sets pool_max_conns.
const defaultMaxConns = 16

// ErrSchemaTooNew refuses a database migrated by a newer Keyward, whose schema
// this build would misread or damage.
var ErrSchemaTooNew = errors.New("postgres: database schema is newer than this build of keyward")

// DB is the store of one or several Keyward nodes sharing a PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool
	fold string // the collation that lowers a non-ASCII search (see lowered)

	settler  *settle.Settler // settles revocation marks (revocation.go)
	markFrom int             // markRevocationsFrom, or another in tests
}

var _ keyward.Store = (*DB)(nil)

// Open connects to the database at dsn (a postgres:// URL or a libpq
// key=value string) and brings its schema up to date. It refuses a database
// whose schema is newer than this build's migrations (ErrSchemaTooNew).
func Open(ctx context.Context, dsn string) (*DB, error) {
	return open(ctx, dsn, options{markFrom: markRevocationsFrom})
}

// options are what tests may change of a DB before it starts.
type options struct {
	markFrom   int  // see markRevocationsFrom
	settlerOff bool // marks stay pending until a read settles them
}

func open(ctx context.Context, dsn string, o options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse connection string: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgxpool's default (4 on this kind of machine) is too few for a
		// server: the leader's lock keeps one, the usage flush another, and
		// a verification that misses the cache must not queue behind them.
		cfg.MaxConns = max(cfg.MaxConns, defaultMaxConns)
	}
	if err := migrate(ctx, cfg.ConnConfig); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	db := &DB{pool: pool, fold: `"default"`, markFrom: o.markFrom}
	// A search with letters beyond ASCII compares lowered text: ICU's root
	// collation lowers every letter whatever the database's locale; without
	// ICU, the database's default collation does what its locale knows.
	var icu bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')`).Scan(&icu); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: read collations: %w", err)
	}
	if icu {
		db.fold = `"und-x-icu"`
	}
	db.settler = settle.Start(db.settleChunkTx, o.settlerOff)
	return db, nil
}

// SetLogger is where the store reports on its background work (settling
// revocation marks); by default, nowhere.
func (db *DB) SetLogger(l *slog.Logger) { db.settler.SetLogger(l) }

// migrate applies the embedded migrations that the database lacks, under a
// PostgreSQL advisory lock so that nodes starting together take turns.
func migrate(ctx context.Context, cc *pgx.ConnConfig) error {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	db := stdlib.OpenDB(*cc)
	defer db.Close()
	// Nodes starting together wait for each other's migrations, polling the
	// advisory lock every second for up to five minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	sources := p.ListSources()
	latest := sources[len(sources)-1].Version
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > latest {
		return fmt.Errorf("%w: the database is at schema version %d, this build knows up to %d; run a newer keyward",
			ErrSchemaTooNew, current, latest)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// SchemaVersion is the migration version recorded in the database, for
// diagnostics such as "keyward version".
func (db *DB) SchemaVersion(ctx context.Context) (int64, error) {
	var v int64
	err := db.pool.QueryRow(ctx,
		`SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("postgres: read schema version: %w", err)
	}
	return v, nil
}

// Pool is the connection pool, for features beyond the store (LISTEN/NOTIFY,
// advisory locks).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close releases the pool.
func (db *DB) Close() error {
	if db.settler != nil {
		db.settler.Close()
	}
	db.pool.Close()
	return nil
}

// Ping tells readiness probes whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Update runs fn in a READ COMMITTED read-write transaction. Keys read in it
// (Tx.KeyByID) are locked until commit, so that a change decided on what
// was read cannot be overtaken by another node's: a revocation committed
// elsewhere first is seen, and refused as such, not recorded twice. A
// transaction that PostgreSQL aborts as a deadlock victim or a
// serialization failure is run again, up to three times in all; fn must be
// safe to rerun (it is handed a fresh transaction each time).
func (db *DB) Update(ctx context.Context, fn func(keyward.Tx) error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = db.run(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite}, true, fn)
		if c := pgCode(err); c != "40P01" && c != "40001" {
			return err
		}
	}
	return err
}

// View runs fn in a READ ONLY REPEATABLE READ transaction: one snapshot.
func (db *DB) View(ctx context.Context, fn func(keyward.Tx) error) error {
	// A read of the audit trail may need the tenant's marks settled first.
	return db.settler.Read(ctx, func() error {
		return db.run(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, false, fn)
	})
}

func (db *DB) run(ctx context.Context, opts pgx.TxOptions, write bool, fn func(keyward.Tx) error) error {
	pgTx, err := db.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			pgTx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
	}()
	t := &tx{tx: pgTx, write: write, fold: db.fold, markFrom: db.markFrom}
	if err := fn(t); err != nil {
		pgTx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := pgTx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	if t.marked {
		db.settler.Wake()
	}
	return nil
}

// tx implements keyward.Tx over one pgx transaction.
type tx struct {
	tx       pgx.Tx
	write    bool     // a read-write transaction: keys read are locked
	fold     string   // DB.fold
	markFrom int      // DB.markFrom
	marked   bool     // the transaction wrote a revocation mark
	settled  []string // tenants whose mark the transaction settled, for the log
}

var _ keyward.Tx = (*tx)(nil)

// pgCode is the SQLSTATE of err, or "".
func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// isUnique reports whether err is a unique_violation (23505).
func isUnique(err error) bool { return pgCode(err) == "23505" }

// isForeignKey reports whether err is a foreign_key_violation (23503).
func isForeignKey(err error) bool { return pgCode(err) == "23503" }

// wrap gives a driver error the operation it failed in; it stays an internal
// error for the caller.
func wrap(op string, err error) error {
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// mustChange turns "no row changed" into ENotFound with the given message.
func mustChange(tag pgconn.CommandTag, notFound string) error {
	if tag.RowsAffected() == 0 {
		return keyward.Errorf(keyward.ENotFound, "%s", notFound)
	}
	return nil
}
