// Package sqlite is Keyward's embedded store: one SQLite file through the pure
// Go driver modernc.org/sqlite, in WAL mode with foreign keys on and
// synchronous=FULL, one writer connection and a pool of read-only readers.
//
// Every write transaction starts with BEGIN IMMEDIATE on the single writer
// connection, so write transactions never interleave: that is what makes
// "lock the owner, count its keys, insert one" atomic.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/settle"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew refuses a database migrated by a newer Keyward, whose schema
// this build would misread or damage.
var ErrSchemaTooNew = errors.New("sqlite: database schema is newer than this build of keyward")

// busyTimeout is how long a statement waits for another process's lock (for
// example "keyward admin" next to a running server) before failing.
const busyTimeout = 10 * time.Second

// DB is the store of a single-node Keyward: one file, no database server to run.
type DB struct {
	path   string
	writer *sql.DB // one connection: write transactions are serialized
	reader *sql.DB // read-only pool for View

	writeStmts map[string]*sql.Stmt
	readStmts  map[string]*sql.Stmt

	search *searchIndex // key search by fragment, for View's transactions

	settler  *settle.Settler // settles revocation marks (revocation.go)
	markFrom int             // markRevocationsFrom, or another in tests
}

var _ keyward.Store = (*DB)(nil)

// Open opens (creating it if needed, with its folder) the database file at
// path and brings its schema up to date. It refuses a database whose schema
// is newer than this build's migrations (ErrSchemaTooNew).
func Open(ctx context.Context, path string) (*DB, error) {
	return open(ctx, path, options{markFrom: markRevocationsFrom})
}

// options are what tests may change of a DB before it starts.
type options struct {
	markFrom   int  // see markRevocationsFrom
	settlerOff bool // marks stay pending until a read settles them
}

func open(ctx context.Context, path string, o options) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: %q is not a database file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create data folder: %w", err)
	}
	// Create the file ourselves so that it (and the -wal and -shm files SQLite
	// derives from it) is readable by its owner only.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	f.Close()

	db := &DB{path: abs, search: newSearchIndex(), markFrom: o.markFrom}
	db.writer, err = sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	db.writer.SetMaxOpenConns(1)
	db.writer.SetMaxIdleConns(1)
	db.writer.SetConnMaxLifetime(0)
	db.writer.SetConnMaxIdleTime(0)
	if err := db.writer.PingContext(ctx); err != nil {
		db.writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if err := migrate(ctx, db.writer); err != nil {
		db.writer.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", abs, err)
	}

	// The readers open after the writer has put the file in WAL mode, which a
	// read-only connection cannot do.
	db.reader, err = sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		db.writer.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	n := max(4, runtime.NumCPU())
	db.reader.SetMaxOpenConns(n)
	db.reader.SetMaxIdleConns(n)
	db.reader.SetConnMaxLifetime(0)
	db.reader.SetConnMaxIdleTime(0)

	if db.writeStmts, err = prepare(ctx, db.writer, false); err == nil {
		db.readStmts, err = prepare(ctx, db.reader, true)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", abs, err)
	}
	db.settler = settle.Start(db.settleChunkTx, o.settlerOff)
	return db, nil
}

// SetLogger is where the store reports on its background work (settling
// revocation marks); by default, nowhere.
func (db *DB) SetLogger(l *slog.Logger) { db.settler.SetLogger(l) }

// dsn is the modernc.org/sqlite data source name of one of the two pools.
// Every connection gets the same pragmas; the writer begins its transactions
// with BEGIN IMMEDIATE, the readers cannot write at all.
func dsn(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	if write {
		// The writer's page cache holds a transaction's dirty pages; past it
		// SQLite spills them to the WAL mid-transaction and reads them back.
		// The default (2 MiB) made a revocation of 100,000 keys, with an event
		// each, mostly system calls; 64 MiB holds such a transaction.
		q.Add("_pragma", "cache_size(-65536)")
		q.Set("_txlock", "immediate")
	} else {
		q.Set("mode", "ro")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// migrate applies the embedded migrations that the database lacks.
func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
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
	err := db.reader.QueryRowContext(ctx,
		`SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("sqlite: read schema version: %w", err)
	}
	return v, nil
}

// Path is the absolute path of the database file, for logs and backups.
func (db *DB) Path() string { return db.path }

// Close stops the settler (marks it has not settled stay in the file, for
// the next Open) and releases both pools, so that the last connection
// checkpoints the WAL into the file.
func (db *DB) Close() error {
	if db.settler != nil {
		db.settler.Close()
	}
	for _, m := range []map[string]*sql.Stmt{db.readStmts, db.writeStmts} {
		for _, s := range m {
			s.Close()
		}
	}
	var err error
	if db.reader != nil {
		err = db.reader.Close()
	}
	return errors.Join(err, db.writer.Close())
}

// Ping tells readiness probes whether both the writer and a reader answer.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.writer.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", err)
	}
	if err := db.reader.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping reader: %w", err)
	}
	return nil
}

// Update runs fn in a write transaction that holds SQLite's write lock from
// its start (BEGIN IMMEDIATE on the one writer), so writes never interleave.
func (db *DB) Update(ctx context.Context, fn func(keyward.Tx) error) error {
	return db.run(ctx, db.writer, db.writeStmts, nil, nil, fn)
}

// View runs fn on a read-only connection: one consistent snapshot that
// neither waits for the writer nor holds it up.
//
// A read that needs a tenant's revocation marks settled (the audit trail)
// has them settled, and runs again.
func (db *DB) View(ctx context.Context, fn func(keyward.Tx) error) error {
	return db.settler.Read(ctx, func() error {
		return db.run(ctx, db.reader, db.readStmts, &sql.TxOptions{ReadOnly: true}, db.search, fn)
	})
}

func (db *DB) run(ctx context.Context, pool *sql.DB, stmts map[string]*sql.Stmt, opts *sql.TxOptions,
	search *searchIndex, fn func(keyward.Tx) error) error {
	sqlTx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			sqlTx.Rollback()
			panic(p)
		}
	}()
	t := &tx{tx: sqlTx, stmts: stmts, search: search, readOnly: opts != nil && opts.ReadOnly, markFrom: db.markFrom}
	if err := fn(t); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if t.marked {
		db.settler.Wake()
	}
	return nil
}

// tx implements keyward.Tx over one database/sql transaction.
type tx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt // prepared once per pool, see prepared
	// search is the store's key search index in a read-only transaction; a
	// write transaction sees its own uncommitted changes, which the index
	// must never take in, and searches in SQL.
	search   *searchIndex
	readOnly bool
	marked   bool     // the transaction wrote a revocation mark
	markFrom int      // the DB's markFrom
	settled  []string // tenants whose mark the transaction settled, for the log
}

var _ keyward.Tx = (*tx)(nil)

// A prepared query: the fixed statements of the store are prepared once per
// pool at Open and reused by every transaction (database/sql keeps one
// prepared copy per connection). Dynamic list queries are not.
type prepared struct {
	sql   string
	write bool
}

var preparedQueries []prepared

// readQuery registers a fixed read statement and returns its text.
func readQuery(q string) string {
	preparedQueries = append(preparedQueries, prepared{sql: q})
	return q
}

// writeQuery registers a fixed write statement and returns its text.
func writeQuery(q string) string {
	preparedQueries = append(preparedQueries, prepared{sql: q, write: true})
	return q
}

func prepare(ctx context.Context, db *sql.DB, readOnly bool) (map[string]*sql.Stmt, error) {
	m := make(map[string]*sql.Stmt, len(preparedQueries))
	for _, p := range preparedQueries {
		if readOnly && p.write {
			continue
		}
		s, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			for _, s := range m {
				s.Close()
			}
			return nil, fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		m[p.sql] = s
	}
	return m, nil
}

// stmt is the transaction's copy of a prepared statement, or nil for a query
// that was not prepared for this pool.
func (t *tx) stmt(ctx context.Context, q string) *sql.Stmt {
	if s := t.stmts[q]; s != nil {
		return t.tx.StmtContext(ctx, s)
	}
	return nil
}

// prepare is a statement to run many times in this transaction.
func (t *tx) prepare(ctx context.Context, q string) (*sql.Stmt, error) {
	if s := t.stmt(ctx, q); s != nil {
		return s, nil
	}
	return t.tx.PrepareContext(ctx, q)
}

func (t *tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s := t.stmt(ctx, q); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

func (t *tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(ctx, q); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

func (t *tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if s := t.stmt(ctx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// sqliteCode is the extended SQLite result code of err, or 0.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isForeignKey reports whether err is a FOREIGN KEY violation.
func isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// wrap gives a driver error the operation it failed in; it stays an internal
// error for the caller.
func wrap(op string, err error) error {
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// rowsAffected is the number of rows a statement changed.
func rowsAffected(op string, res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap(op, err)
	}
	return n, nil
}
