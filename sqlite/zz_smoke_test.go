package sqlite

import (
	"context"
	"testing"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, t.TempDir()+"/a b/k.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, p := range []string{"journal_mode", "synchronous", "foreign_keys", "busy_timeout", "query_only"} {
		var v string
		db.reader.QueryRow("PRAGMA " + p).Scan(&v)
		var w string
		db.writer.QueryRow("PRAGMA " + p).Scan(&w)
		t.Log(p, v, w)
	}
	for _, q := range []string{
		`SELECT k.id FROM keys k JOIN users u ON u.id = k.owner_id WHERE k.tenant_id = 'x' AND (k.name, k.id) > ('a', 'b') ORDER BY k.name, k.id LIMIT 5`,
		`SELECT k.id FROM keys k JOIN users u ON u.id = k.owner_id WHERE k.tenant_id = 'x' AND k.name COLLATE NOCASE >= 'a' AND (k.name COLLATE NOCASE > 'a' OR k.id > 'b') ORDER BY k.name COLLATE NOCASE, k.id LIMIT 5`,
		`SELECT k.id FROM keys k JOIN users u ON u.id = k.owner_id WHERE k.tenant_id = 'x' AND k.id COLLATE NOCASE >= 'a' AND (k.id COLLATE NOCASE > 'a' OR k.id > 'b') ORDER BY k.id COLLATE NOCASE, k.id LIMIT 5`,
		`SELECT k.id FROM keys k JOIN users u ON u.id = k.owner_id WHERE k.tenant_id = 'x' AND coalesce(k.expires_at, 9223372036854775807) <= 5 AND (coalesce(k.expires_at, 9223372036854775807) < 5 OR k.id < 'b') ORDER BY coalesce(k.expires_at, 9223372036854775807) DESC, k.id DESC LIMIT 5`,
		`SELECT k.id FROM keys k JOIN users u ON u.id = k.owner_id WHERE k.tenant_id = 'x' AND (k.created_at, k.id) < (5, 'b') ORDER BY k.created_at DESC, k.id DESC LIMIT 5`,
		`SELECT k.id FROM keys k WHERE k.tenant_id = 'x' AND (k.created_at, k.id) < (5, 'b') ORDER BY k.created_at DESC, k.id DESC LIMIT 5`,
} {
		rows, err := db.reader.Query("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(q)
		for rows.Next() {
			var a, b, c int
			var d string
			rows.Scan(&a, &b, &c, &d)
			t.Log("   ", d)
		}
		rows.Close()
	}
	v, err := db.SchemaVersion(ctx)
	t.Log(v, err)
}
