package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyward/keyward"
)

// benchEventsTenant is the tenant of the events fixture.
const benchEventsTenant = "tnt_events"

// benchEventCount is the number of events of the events fixture:
// KEYWARD_BENCH_EVENTS, default 100,000 (docs/performance.md uses 1,000,000).
func benchEventCount(tb testing.TB) int {
	return benchCount(tb, "KEYWARD_BENCH_EVENTS", "events", 100_000)
}

// eventsFixture is a database whose one tenant has n events (five actions,
// 50 actors, 100,000 keys as targets, a millisecond apart), written through
// SQL, and counted once as the store counts them. It is built once and kept
// in os.TempDir().
func eventsFixture(b *testing.B) string {
	b.Helper()
	n := benchEventCount(b)
	path := filepath.Join(os.TempDir(), fmt.Sprintf("keyward-bench-events-v1-%d.db", n))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	ctx := context.Background()
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	defer os.Remove(tmp)
	db, err := Open(ctx, tmp)
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{{
		`WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ?2 - 1)
		INSERT INTO events (` + eventColumns + `)
		SELECT printf('evt_%022d', i), ?1, 1764000000000000 + i * 1000,
			CASE i % 5 WHEN 0 THEN 'key.created' WHEN 1 THEN 'key.revoked' WHEN 2 THEN 'auth.failed'
				WHEN 3 THEN 'key.updated' ELSE 'session.created' END,
			'user', printf('usr_%d', i % 50), 'Actor', printf('usr_%d', i % 50),
			'key', printf('key_%d', i % 100000), 'a key', printf('usr_%d', i % 50),
			'10.0.0.7', 'keyward-cli/1.0', '{}'
		FROM seq`, []any{benchEventsTenant, n},
	}, {
		`INSERT INTO event_totals (tenant_id, n) SELECT tenant_id, count(*) FROM events WHERE tenant_id = ? GROUP BY tenant_id`,
		[]any{benchEventsTenant},
	}} {
		if _, err := db.writer.ExecContext(ctx, q.sql, q.args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	os.Remove(tmp + "-shm")
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkListEvents reads the first page of the audit trail (50 events,
// with its total) of a tenant of n events, unfiltered and under a filter,
// and, as the baseline of the same run, the total counted row by row as
// ListEvents did before the counter.
func BenchmarkListEvents(b *testing.B) {
	path := eventsFixture(b)
	db, err := Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	n := benchEventCount(b)
	for _, c := range []struct {
		name  string
		f     keyward.EventFilter
		total int
	}{
		{"first page", keyward.EventFilter{}, n},
		{"action=key.revoked", keyward.EventFilter{Action: keyward.ActionKeyRevoked}, (n + 3) / 5},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := c.f
			f.TenantID, f.PageSize = benchEventsTenant, 50
			var page *keyward.EventPage
			for b.Loop() {
				page = benchView(b, db, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) {
					return tx.ListEvents(ctx, f)
				})
			}
			if page.Total != c.total || len(page.Events) != 50 {
				b.Fatalf("total %d, %d events; want %d and 50", page.Total, len(page.Events), c.total)
			}
		})
	}
	b.Run("baseline: count row by row", func(b *testing.B) {
		var total int
		for b.Loop() {
			if err := db.reader.QueryRowContext(context.Background(),
				`SELECT count(*) FROM events WHERE tenant_id = ?`, benchEventsTenant).Scan(&total); err != nil {
				b.Fatal(err)
			}
		}
		if total != n {
			b.Fatalf("counted %d, want %d", total, n)
		}
	})
}
