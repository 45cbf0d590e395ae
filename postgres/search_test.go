package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/postgres/pgtest"
)

// TestSearchWithoutTrigrams: a database user that may not create pg_trgm
// (no CREATE on the database) still migrates, without the trigram indexes of
// 00005_key_search, and its searches answer by reading every key; a user
// that may (the other tests') gets the indexes.
func TestSearchWithoutTrigrams(t *testing.T) {
	ctx := context.Background()
	u := pgtest.NewDatabase(t)
	admin, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	role := "kw_noext_" + hex.EncodeToString(b)
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`GRANT USAGE, CREATE ON SCHEMA public TO ` + role,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		// Before the database goes (pgtest's cleanup, registered earlier).
		admin, err := pgx.Connect(context.Background(), u)
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close(context.Background())
		for _, q := range []string{`DROP OWNED BY ` + role, `DROP ROLE ` + role} {
			if _, err := admin.Exec(context.Background(), q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	asRole, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	asRole.User = url.User(role)

	db, err := postgres.Open(ctx, asRole.String())
	if err != nil {
		t.Fatalf("migrating as a user who may not create pg_trgm: %v", err)
	}
	defer db.Close()
	var ext, trgm int
	if err := admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'),
		(SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%\_trgm')`).Scan(&ext, &trgm); err != nil {
		t.Fatal(err)
	}
	if ext != 0 || trgm != 0 {
		t.Fatalf("pg_trgm created %d times, %d trigram indexes: the user could not have", ext, trgm)
	}

	now := time.Now().UTC().Truncate(time.Microsecond)
	tn := &keyward.Tenant{ID: "tnt_search", Name: "Search", CreatedAt: now, Settings: keyward.DefaultSettings()}
	owner := &keyward.User{ID: "usr_owner", TenantID: tn.ID, Email: "amelia@example.com", Name: "Amelia",
		Kind: keyward.KindUser, Roles: []string{}, CreatedAt: now, UpdatedAt: now}
	key := func(id, name string) *keyward.Key {
		return &keyward.Key{ID: id, TenantID: tn.ID, Name: name, OwnerID: owner.ID, Role: keyward.KeyRoleAdmin,
			Scopes: []string{}, Meta: json.RawMessage(`{}`), Hash: []byte(id), Start: "kw_Ab3d", CreatedAt: now, UpdatedAt: now}
	}
	if err := db.Update(ctx, func(tx keyward.Tx) error {
		for _, err := range []error{tx.CreateTenant(ctx, tn), tx.CreateUser(ctx, owner),
			tx.CreateKey(ctx, key("key_1", "ledger-prod")), tx.CreateKey(ctx, key("key_2", "billing-dev"))} {
			if err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The other tests' user may: it gets the four indexes.
	other, err := postgres.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%\_trgm'`).Scan(&trgm); err != nil || trgm != 4 {
		t.Errorf("a user who may create pg_trgm: %d trigram indexes (%v), want 4", trgm, err)
	}

	for q, want := range map[string]int{"LEDGER": 1, "amelia@": 2, "key_2": 1, "nothing": 0} {
		var page *keyward.KeyPage
		if err := db.View(ctx, func(tx keyward.Tx) error {
			page, err = tx.ListKeys(ctx, keyward.KeyFilter{TenantID: tn.ID, Q: q, PageSize: 10, Now: now})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if page.Total != want || len(page.Keys) != want {
			t.Errorf("q=%q: total %d, %d keys; want %d", q, page.Total, len(page.Keys), want)
		}
	}
}
