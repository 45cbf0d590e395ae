package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"runtime"
	"testing"
)

// TestPragmas checks every connection of both pools, held at once so that
// the pool has to open each of them.
func TestPragmas(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "keyward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"foreign_keys": "1",
		"busy_timeout": "10000",
	}
	pools := []struct {
		name string
		db   *sql.DB
		n    int
	}{{"writer", db.writer, 1}, {"reader", db.reader, max(4, runtime.NumCPU())}}
	for _, p := range pools {
		if got := p.db.Stats().MaxOpenConnections; got != p.n {
			t.Errorf("%s pool: %d connections at most, want %d", p.name, got, p.n)
		}
		var conns []*sql.Conn
		for range p.n {
			c, err := p.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for i, c := range conns {
			for pragma, value := range want {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatalf("%s connection %d: PRAGMA %s: %v", p.name, i, pragma, err)
				}
				if got != value {
					t.Errorf("%s connection %d: PRAGMA %s = %s, want %s", p.name, i, pragma, got, value)
				}
			}
			if p.name == "reader" {
				if _, err := c.ExecContext(ctx, `CREATE TABLE nope (x)`); err == nil {
					t.Errorf("reader connection %d could write", i)
				}
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

// TestWriteTransactionsAreImmediate checks that an Update takes the write
// lock when it begins, which is what serializes "count, then insert".
func TestWriteTransactionsAreImmediate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyward.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	// No statement has run in tx yet; another connection cannot take the
	// write lock all the same.
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, `BEGIN IMMEDIATE`); err == nil {
		other.ExecContext(ctx, `ROLLBACK`)
		t.Error("a second writer began while an Update was open")
	}
}
