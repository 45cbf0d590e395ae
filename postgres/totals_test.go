package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/postgres/pgtest"
)

// The key totals of 00004_key_totals: keys inserted by a node of the
// previous release (whose INSERT does not name owner_kind) count under
// their owner's kind, and keys that existed before the migration are
// counted by it, then kept by the triggers through a cascade.
func TestKeyTotalsAcrossUpgrade(t *testing.T) {
	ctx := context.Background()
	u := pgtest.NewDatabase(t)
	db, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	tn := &keyward.Tenant{ID: "tnt_totals", Name: "Totals", CreatedAt: now, Settings: keyward.DefaultSettings()}
	people := &keyward.User{ID: "usr_person", TenantID: tn.ID, Email: "p@example.com", Name: "P",
		Kind: keyward.KindUser, Roles: []string{}, CreatedAt: now, UpdatedAt: now}
	robot := &keyward.User{ID: "usr_robot", TenantID: tn.ID, Email: "r@svc.example", Name: "R",
		Kind: keyward.KindSystem, Roles: []string{}, CreatedAt: now, UpdatedAt: now}
	if err := db.Update(ctx, func(tx keyward.Tx) error {
		if err := tx.CreateTenant(ctx, tn); err != nil {
			return err
		}
		if err := tx.CreateUser(ctx, people); err != nil {
			return err
		}
		return tx.CreateUser(ctx, robot)
	}); err != nil {
		t.Fatal(err)
	}
	// A key as the previous release inserts it: no owner_kind.
	oldInsert := func(id, owner string, hash byte) {
		t.Helper()
		if _, err := db.Pool().Exec(ctx, `INSERT INTO keys (id, tenant_id, owner_id, name, description, role,
			scopes, meta, hash, start, disabled, created_at, updated_at)
			VALUES ($1, $2, $3, $1, '', 'admin', '[]', '{}', $4, 'kw_x', false, $5, $5)`,
			id, tn.ID, owner, []byte{hash, 1, 2, 3}, now.UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	totals := func(when string, all, users, systems int) {
		t.Helper()
		for _, c := range []struct {
			typ  string
			want int
		}{{"", all}, {keyward.KindUser, users}, {keyward.KindSystem, systems}} {
			var page *keyward.KeyPage
			if err := db.View(ctx, func(tx keyward.Tx) (err error) {
				page, err = tx.ListKeys(ctx, keyward.KeyFilter{TenantID: tn.ID, Type: c.typ, Now: now, PageSize: 200})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if page.Total != c.want || len(page.Keys) != c.want {
				t.Errorf("%s: type %q: total %d, %d keys listed, want %d", when, c.typ, page.Total, len(page.Keys), c.want)
			}
		}
	}
	oldInsert("key_old_node", robot.ID, 1)
	totals("a key from an older node", 1, 0, 1)

	// Back to the schema before 00004 (the Downs of 00006, 00005 and 00004), with keys in
	// it; the next Open migrates it again and must count them.
	oldInsert("key_before_1", robot.ID, 2)
	oldInsert("key_before_2", people.ID, 3)
	for _, q := range []string{
		// 00006's Down first (no mark is pending), then 00005's.
		`DROP TRIGGER keys_revocation_delete ON keys`,
		`DROP TRIGGER keys_revocation_update ON keys`,
		`DROP FUNCTION keyward_marked_key_deleted()`,
		`DROP FUNCTION keyward_marked_key_changed()`,
		`DROP FUNCTION keyward_mark_event(keys, key_revocations)`,
		`DROP FUNCTION keyward_key_mark(keys)`,
		`DROP TABLE key_revocations`,
		`DROP INDEX keys_by_tenant_seq`,
		`DROP INDEX keys_by_seq`,
		`ALTER TABLE keys DROP COLUMN seq`,
		`DELETE FROM goose_db_version WHERE version_id = 6`,
		`DROP INDEX IF EXISTS users_email_trgm`,
		`DROP INDEX IF EXISTS users_name_trgm`,
		`DROP INDEX IF EXISTS keys_id_trgm`,
		`DROP INDEX IF EXISTS keys_name_trgm`,
		`DELETE FROM goose_db_version WHERE version_id = 5`,
		`DROP TRIGGER keys_owner_kind ON keys`,
		`DROP FUNCTION keyward_key_owner_kind()`,
		`DROP TRIGGER keys_total_delete ON keys`,
		`DROP TRIGGER keys_total_insert ON keys`,
		`DROP FUNCTION keyward_count_deleted_keys()`,
		`DROP FUNCTION keyward_count_inserted_keys()`,
		`DROP TABLE key_totals`,
		`ALTER TABLE keys DROP COLUMN owner_kind`,
		`DELETE FROM goose_db_version WHERE version_id = 4`,
	} {
		if _, err := db.Pool().Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	if db, err = postgres.Open(ctx, u); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	defer db.Close()
	totals("after the migration", 3, 1, 2)

	// Deleting the system user cascades to its two keys: one statement.
	if err := db.Update(ctx, func(tx keyward.Tx) error { return tx.DeleteUser(ctx, tn.ID, robot.ID) }); err != nil {
		t.Fatal(err)
	}
	totals("after the system user's deletion", 1, 1, 0)
}
