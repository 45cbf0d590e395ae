package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/storetest"
)

// openWith opens a store at path with options o, closed with the test.
func openWith(t *testing.T, path string, o options) *DB {
	t.Helper()
	db, err := open(context.Background(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openMarking opens a store that writes every set revocation as a mark
// (markFrom 1) and leaves the marks pending until a read of the audit trail,
// or the test, settles them.
func openMarking(t *testing.T, path string) *DB {
	return openWith(t, path, options{markFrom: 1, settlerOff: true})
}

// mustOpenHere opens a store that revokes sets as it would in production.
func mustOpenHere(t *testing.T, path string) *DB {
	return openWith(t, path, options{markFrom: markRevocationsFrom})
}

// TestStoreWithMarks is the conformance suite with every set revocation a
// pending mark: whatever a test reads after it, it must read what a
// revocation row by row would have left.
func TestStoreWithMarks(t *testing.T) {
	storetest.RunWith(t, storetest.Config{OwnRevocationEventIDs: true}, func(t *testing.T) keyward.Store {
		return openMarking(t, filepath.Join(t.TempDir(), "keyward.db"))
	})
}

// TestMarksAgreeWithRowByRow: see storetest.MarksAgreeWithRowByRow.
func TestMarksAgreeWithRowByRow(t *testing.T) {
	steps := 250
	if raceDetector {
		steps = 80
	}
	marks := openMarking(t, filepath.Join(t.TempDir(), "marks.db"))
	rows := mustOpenHere(t, filepath.Join(t.TempDir(), "rows.db"))
	storetest.MarksAgreeWithRowByRow(t, marks, rows, steps,
		func(ctx context.Context, tenantID string, n int) error {
			return marks.Update(ctx, func(ktx keyward.Tx) error {
				_, err := ktx.(*tx).settleChunk(ctx, tenantID, n)
				return err
			})
		},
		func() int {
			var n int
			if err := marks.reader.QueryRow(`SELECT count(*) FROM key_revocations`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		})
}

// markFixture is a tenant with keys in a store that writes every set
// revocation as a pending mark.
type markFixture struct {
	*searchFixture
	tn    *keyward.Tenant
	owner *keyward.User
	keys  []*keyward.Key
}

func newMarkFixture(t *testing.T, db *DB, path string, n int) *markFixture {
	t.Helper()
	f := &markFixture{searchFixture: &searchFixture{t: t, ctx: context.Background(), db: db, path: path,
		now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}}
	f.tn = f.tenant("Acme")
	f.owner = f.user(db, f.tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	for i := range n {
		f.keys = append(f.keys, f.key(db, f.owner, fmt.Sprintf("key %d", i), f.now))
	}
	return f
}

// revokeAll revokes every key of the tenant in db, with an event each.
func (f *markFixture) revokeAll(db *DB) {
	f.t.Helper()
	f.update(db, func(tx keyward.Tx) error {
		_, err := tx.RevokeKeys(f.ctx, keyward.RevokeSpec{TenantID: f.tn.ID, At: f.now, By: f.owner.ID,
			Event: &keyward.Event{Time: f.now, TenantID: f.tn.ID, Action: keyward.ActionKeyRevoked,
				Actor: keyward.Ref{Type: keyward.ActorUser, ID: f.owner.ID, Name: "Ada"}, ActorUserID: f.owner.ID,
				Target: keyward.Ref{Type: keyward.TargetKey}, Details: map[string]any{"bulk": true}},
			NewID: func() (string, error) { return f.id(keyward.PrefixEvent), nil }})
		return err
	})
}

// rawFile opens the file with plain database/sql, as another program would.
func rawFile(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rawCount counts in the file itself, past the store's reads (which
// would settle marks first).
func rawCount(t *testing.T, path, query string) int {
	t.Helper()
	var n int
	if err := rawFile(t, path).QueryRow(query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMarksSurviveRestart: a mark that a stopped process left is settled by
// the next Open, without any read asking for it.
func TestMarksSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := openMarking(t, path)
	f := newMarkFixture(t, db, path, 5)
	f.revokeAll(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM key_revocations`); n != 1 {
		t.Fatalf("%d marks in the file after Close, want the pending one", n)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM keys WHERE revoked_at IS NULL`); n != 5 {
		t.Fatalf("%d keys unrevoked in their rows, want all 5 (the mark pending)", n)
	}

	db = mustOpenHere(t, path) // its settler settles what it finds
	deadline := time.Now().Add(10 * time.Second)
	for rawCount(t, path, `SELECT count(*) FROM key_revocations`) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the mark was not settled within 10 s of Open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM keys WHERE revoked_at IS NULL`); n != 0 {
		t.Errorf("%d keys unrevoked in their rows after settling", n)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM events WHERE action = 'key.revoked'`); n != 5 {
		t.Errorf("%d key.revoked events after settling, want 5", n)
	}
	if n := rawCount(t, path, `SELECT n FROM event_totals`); n != 5 {
		t.Errorf("event total %d after settling, want 5", n)
	}
}

// TestMarksSeenByAnotherProcess: a second Open of the file reads the keys
// of a mark that the first wrote revoked, before anything settles it; its
// settler is held off, so that the rows stay as they were.
func TestMarksSeenByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := openMarking(t, path)
	f := newMarkFixture(t, db, path, 3)
	other := openMarking(t, path) // whose settler is held off too
	f.revokeAll(db)
	for _, k := range f.keys {
		got, _, err := other.KeyForVerify(f.ctx, k.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status(f.now) != keyward.StatusRevoked || got.RevokedAt == nil || !got.RevokedAt.Equal(f.now) ||
			got.RevokedBy == nil || *got.RevokedBy != f.owner.ID || !got.UpdatedAt.Equal(f.now) {
			t.Errorf("%s read by the other process: %s, revoked at %v by %v, updated %v; want revoked at %v by %s",
				k.Name, got.Status(f.now), got.RevokedAt, got.RevokedBy, got.UpdatedAt, f.now, f.owner.ID)
		}
	}
	if n := rawCount(t, path, `SELECT count(*) FROM keys WHERE revoked_at IS NULL`); n != 3 {
		t.Fatalf("%d keys unrevoked in their rows, want 3: the reads above did not go through the mark", n)
	}
}

// TestMarkRollsBack: a transaction that fails after writing a mark leaves
// nothing of it.
func TestMarkRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := openMarking(t, path)
	f := newMarkFixture(t, db, path, 3)
	broken := fmt.Errorf("broken")
	err := db.Update(f.ctx, func(tx keyward.Tx) error {
		if _, err := tx.RevokeKeys(f.ctx, keyward.RevokeSpec{TenantID: f.tn.ID, At: f.now}); err != nil {
			return err
		}
		return broken
	})
	if err != broken {
		t.Fatalf("Update: %v, want the fn's error", err)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM key_revocations`); n != 0 {
		t.Errorf("%d marks after a rollback", n)
	}
	for _, k := range f.keys {
		got, _, err := db.KeyForVerify(f.ctx, k.Hash)
		if err != nil || got.RevokedAt != nil {
			t.Errorf("%s after a rolled-back revocation: revoked at %v, %v", k.Name, got.RevokedAt, err)
		}
	}
}

// TestNewKeyAboveMarks: a key created while a mark is pending is not
// covered by it, even where SQLite would give it the rowid of a deleted
// key that the mark counted.
func TestNewKeyAboveMarks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := openMarking(t, path)
	f := newMarkFixture(t, db, path, 3)
	f.revokeAll(db)
	last := f.keys[len(f.keys)-1]
	f.update(db, func(tx keyward.Tx) error { return tx.DeleteKey(f.ctx, f.tn.ID, last.ID) })
	k := f.key(db, f.owner, "after", f.now.Add(time.Minute))
	var rowid, maxRow int
	raw := rawFile(t, path)
	if err := raw.QueryRow(`SELECT rowid FROM keys WHERE id = ?`, k.ID).Scan(&rowid); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`SELECT max_rowid FROM key_revocations`).Scan(&maxRow); err != nil {
		t.Fatal(err)
	}
	if rowid <= maxRow {
		t.Errorf("the new key's rowid %d is not above the mark's %d", rowid, maxRow)
	}
	got, _, err := db.KeyForVerify(f.ctx, k.Hash)
	if err != nil || got.RevokedAt != nil {
		t.Errorf("the key created after the mark: revoked at %v, %v; want unrevoked", got.RevokedAt, err)
	}
	// The deleted key's revocation is in the trail, before its deletion.
	if n := rawCount(t, path, `SELECT count(*) FROM events WHERE action = 'key.revoked' AND target_id = '`+last.ID+`'`); n != 1 {
		t.Errorf("%d key.revoked events of the key deleted while its mark was pending, want 1", n)
	}
}

// TestMarksMigrateDown: taking migration 00007 back writes every pending
// mark's keys and events first, so that undoing the schema undoes no
// revocation.
func TestMarksMigrateDown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := openMarking(t, path)
	f := newMarkFixture(t, db, path, 4)
	f.revokeAll(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw := rawFile(t, path)
	raw.SetMaxOpenConns(1)
	if _, err := raw.Exec(`PRAGMA foreign_keys = ON`); err != nil {
		t.Fatal(err)
	}
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, raw, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(context.Background(), 6); err != nil {
		t.Fatal(err)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM sqlite_master WHERE name = 'key_revocations'`); n != 0 {
		t.Fatal("key_revocations is still there")
	}
	if n := rawCount(t, path, `SELECT count(*) FROM keys WHERE revoked_at IS NULL`); n != 0 {
		t.Errorf("%d keys unrevoked after the migration down", n)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM keys WHERE revoked_by = '`+f.owner.ID+`' AND updated_at = revoked_at`); n != 4 {
		t.Errorf("%d keys revoked by the mark's actor, updated then; want 4", n)
	}
	if n := rawCount(t, path, `SELECT count(*) FROM events WHERE action = 'key.revoked'`); n != 4 {
		t.Errorf("%d key.revoked events after the migration down, want 4", n)
	}
	if n := rawCount(t, path, `SELECT n FROM event_totals`); n != 4 {
		t.Errorf("event total %d after the migration down, want 4", n)
	}
}

// TestRawInsertBelowMarkFails: a key that another program inserts, where
// SQLite would give it the rowid of a deleted key that a pending mark
// counted, is refused rather than read revoked.
func TestRawInsertBelowMarkFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyward.db")
	db := openMarking(t, path)
	f := newMarkFixture(t, db, path, 3)
	f.revokeAll(db)
	last := f.keys[len(f.keys)-1]
	f.update(db, func(tx keyward.Tx) error { return tx.DeleteKey(f.ctx, f.tn.ID, last.ID) })
	insert := `INSERT INTO keys (id, tenant_id, owner_id, name, description, role, scopes, meta, hash, start,
		disabled, created_at, updated_at) VALUES (?, ?, ?, 'raw', '', 'admin', '[]', '{}', ?, 'kw_Ab3d', 0, 0, 0)`
	raw := rawFile(t, path)
	_, err := raw.Exec(insert, "key_raw", f.tn.ID, f.owner.ID, []byte("a digest of thirty-two bytes...."))
	if err == nil || !strings.Contains(err.Error(), "pending revocation mark") {
		t.Fatalf("a raw insert at a deleted covered key's rowid: %v, want it refused", err)
	}
	// Once the mark is settled, the same insert goes in.
	if err := db.settler.Settle(f.ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(insert, "key_raw", f.tn.ID, f.owner.ID, []byte("a digest of thirty-two bytes....")); err != nil {
		t.Fatalf("the raw insert after settling: %v", err)
	}
}
