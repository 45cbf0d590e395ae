package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/storetest"
)

func mustOpen(tb testing.TB, path string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keyward.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "keyward.db"))
	})
}

// rawDB opens the file with plain database/sql, as a second process would.
func rawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "folder", "keyward.db")
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	tn := &keyward.Tenant{ID: "ten_1", Name: "Acme", CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		Settings: keyward.DefaultSettings()}
	if err := db.Update(ctx, func(tx keyward.Tx) error { return tx.CreateTenant(ctx, tn) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file: %v, %v; want mode 0600", fi, err)
	}

	db = mustOpen(t, path)
	var got *keyward.Tenant
	err = db.View(ctx, func(tx keyward.Tx) error {
		var err error
		got, err = tx.TenantByName(ctx, "Acme")
		return err
	})
	if err != nil || got.ID != tn.ID {
		t.Fatalf("after reopening: %+v, %v; want the tenant", got, err)
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v < 1 {
		t.Errorf("SchemaVersion = %d, %v; want at least 1", v, err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	// A newer keyward recorded a migration this build does not have.
	raw := rawDB(t, path)
	if _, err := raw.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, 1)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	db, err = sqlite.Open(ctx, path)
	if err == nil {
		db.Close()
		t.Fatal("Open succeeded on a database with a newer schema")
	}
	if !errors.Is(err, sqlite.ErrSchemaTooNew) {
		t.Errorf("Open: %v, want ErrSchemaTooNew", err)
	}
	t.Logf("Open: %v", err)
}

func TestOpenRefusesNonFiles(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if db, err := sqlite.Open(context.Background(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestDriverErrorsAreInternal(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "keyward.db"))
	ctx := context.Background()
	err := db.Update(ctx, func(tx keyward.Tx) error {
		return tx.CreateTenant(ctx, &keyward.Tenant{Name: "no id"})
	})
	if err == nil || keyward.ErrorCode(err) != keyward.EInternal {
		t.Errorf("CreateTenant without id: %v, want an internal error", err)
	}
	// A closed database answers with an error, not a panic.
	db2, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "closed.db"))
	if err != nil {
		t.Fatal(err)
	}
	db2.Close()
	if err := db2.Ping(ctx); err == nil {
		t.Error("Ping on a closed database succeeded")
	}
}
