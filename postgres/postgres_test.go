package postgres_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/postgres/pgtest"
	"github.com/keyward/keyward/storetest"
)

func open(t *testing.T) keyward.Store { return openWith(t, postgres.Open, pgtest.NewDatabase(t)) }

// openWith opens the database at dsn through opener (postgres.Open, or
// postgres.OpenMarking), closed with the test.
func openWith(t *testing.T, opener func(context.Context, string) (*postgres.DB, error), dsn string) *postgres.DB {
	t.Helper()
	db, err := opener(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, open)
}

// TestReopen checks that opening a migrated database again is a no-op that
// keeps the data and the schema version.
func TestReopen(t *testing.T) {
	u := pgtest.NewDatabase(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx keyward.Tx) error {
		return tx.CreateTenant(ctx, &keyward.Tenant{ID: "tnt_1", Name: "Acme", CreatedAt: time.Now(),
			Settings: keyward.DefaultSettings()})
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = postgres.Open(ctx, u)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	v2, err := db.SchemaVersion(ctx)
	if err != nil || v2 != v1 || v1 < 1 {
		t.Errorf("schema version %d, then %d (%v)", v1, v2, err)
	}
	if err := db.View(ctx, func(tx keyward.Tx) error {
		_, err := tx.TenantByName(ctx, "ACME")
		return err
	}); err != nil {
		t.Errorf("tenant after reopen: %v", err)
	}
}

// TestSchemaTooNew checks that Open refuses a database migrated by a newer build.
func TestSchemaTooNew(t *testing.T) {
	u := pgtest.NewDatabase(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx,
		`INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, v+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = postgres.Open(ctx, u)
	if err == nil {
		db.Close()
		t.Fatal("Open accepted a schema newer than the build")
	}
	if !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Errorf("Open: %v, want ErrSchemaTooNew", err)
	}
}

// TestOpenRefusesBadDSN checks that a malformed connection string is an error, not a panic.
func TestOpenRefusesBadDSN(t *testing.T) {
	if _, err := postgres.Open(context.Background(), "postgres://%zz"); err == nil {
		t.Error("Open accepted a malformed URL")
	}
}

// TestMain stops the throwaway cluster, if one was started.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}
