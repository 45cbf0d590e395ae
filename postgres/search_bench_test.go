package postgres_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/benchdata"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/postgres/pgtest"
)

// BenchmarkSearchKeys is the first page of a key search by fragment, with
// its total, in a tenant of KEYWARD_BENCH_KEYS keys (default 20,000) of
// n/20 owners, named as the SQLite fixture's keys are (internal/benchdata):
// through the trigram indexes of 00005_key_search ("trgm/…"), then, in the
// same run and database, with those indexes dropped ("scan/…"), which is
// how a database without pg_trgm searches.
//
//	KEYWARD_BENCH_KEYS=1000000 go test ./postgres/ -run '^$' -bench SearchKeys -benchtime 20x
//
// The fixture is written by SQL (generate_series) into a new database each
// run: about a minute at a million keys.
func BenchmarkSearchKeys(b *testing.B) {
	n := benchKeys(b, 20_000, 1000)
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var trgm int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%\_trgm'`).Scan(&trgm); err != nil || trgm != 4 {
		b.Fatalf("%d trigram indexes (%v): want the 4 of 00005_key_search; is pg_trgm installed?", trgm, err)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tn := &keyward.Tenant{ID: "ten_bench", Name: "Bench", CreatedAt: now, Settings: keyward.DefaultSettings()}
	if err := db.Update(ctx, func(tx keyward.Tx) error { return tx.CreateTenant(ctx, tn) }); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for _, q := range []string{
		// Loaded as a database that exists when the migration comes: rows
		// first, indexes after.
		`DROP INDEX keys_name_trgm, keys_id_trgm, users_name_trgm, users_email_trgm`,
		`SELECT setseed(0.25)`,
		`INSERT INTO users (id, tenant_id, email, name, kind, roles, licensed, password_hash, created_at, updated_at)
			SELECT 'usr_' || substr(md5(i::text || 'u'), 1, 22), @tenant,
				f || '.' || l || i || '@corp.bench.example', initcap(f) || ' ' || initcap(l),
				CASE WHEN i % 20 = 0 THEN 'system' ELSE 'user' END, '[]', true, '', @now, @now
			FROM generate_series(1, @users) AS i,
				LATERAL (SELECT (@first::text[])[1 + (hashint4(i) & 65535) % cardinality(@first::text[])] AS f,
					(@last::text[])[1 + (hashint4(i + 7) & 65535) % cardinality(@last::text[])] AS l) AS p`,
		`INSERT INTO keys (id, tenant_id, owner_id, name, description, role, scopes, meta, hash, start,
				disabled, created_at, updated_at)
			SELECT 'key_' || substr(md5(i::text || 'k'), 1, 22), @tenant,
				'usr_' || substr(md5((1 + i % @users)::text || 'u'), 1, 22),
				(@teams::text[])[1 + floor(random() * cardinality(@teams::text[]))::int] || '-' ||
				(@envs::text[])[1 + floor(random() * cardinality(@envs::text[]))::int] || '-' ||
				(@purposes::text[])[1 + floor(random() * cardinality(@purposes::text[]))::int] || '-' ||
				lpad(floor(random() * 10000)::int::text, 4, '0'),
				'', 'readonly', '[]', '{}', decode(md5(i::text), 'hex'), 'kw_Ab3d', false,
				@now::bigint - i::bigint * 60000000, @now::bigint - i::bigint * 60000000
			FROM generate_series(1, @keys) AS i`,
		`CREATE INDEX keys_name_trgm ON keys USING gin (lower(name) gin_trgm_ops)`,
		`CREATE INDEX keys_id_trgm ON keys USING gin (lower(id) gin_trgm_ops)`,
		`CREATE INDEX users_name_trgm ON users USING gin (lower(name) gin_trgm_ops)`,
		`CREATE INDEX users_email_trgm ON users USING gin (lower(email) gin_trgm_ops)`,
		`ANALYZE`,
	} {
		if _, err := db.Pool().Exec(ctx, q, pgx.NamedArgs{"tenant": tn.ID, "now": now.UnixMicro(), "users": n / 20, "keys": n,
			"first": benchdata.First, "last": benchdata.Last, "teams": benchdata.Teams, "envs": benchdata.Envs,
			"purposes": benchdata.Purposes}); err != nil {
			b.Fatalf("%.60s…: %v", q, err)
		}
	}
	b.Logf("%d keys of %d owners written in %.1fs", n, n/20, time.Since(start).Seconds())

	cases := []struct {
		name string
		f    keyward.KeyFilter
	}{
		{"q=combo", keyward.KeyFilter{Sort: "created_at", Desc: true, Q: benchdata.ComboFragment}},
		{"q=team", keyward.KeyFilter{Sort: "created_at", Desc: true, Q: benchdata.TeamFragment}},
		{"q=team/sort=name", keyward.KeyFilter{Sort: "name", Q: benchdata.TeamFragment}},
		{"q=email", keyward.KeyFilter{Sort: "created_at", Desc: true, Q: benchdata.EmailFragment}},
	}
	run := func(b *testing.B) {
		for _, c := range cases {
			b.Run(c.name, func(b *testing.B) {
				kf := c.f
				kf.TenantID, kf.Now, kf.PageSize = tn.ID, now, 50
				var page *keyward.KeyPage
				for b.Loop() {
					if err := db.View(ctx, func(tx keyward.Tx) error {
						var err error
						page, err = tx.ListKeys(ctx, kf)
						return err
					}); err != nil {
						b.Fatal(err)
					}
				}
				if page.Total == 0 && kf.Q != benchdata.EmailFragment { // few owners in a small fixture
					b.Fatalf("q=%q found nothing", kf.Q)
				}
				b.ReportMetric(float64(page.Total), "total")
			})
		}
	}
	b.Run("trgm", run)
	if _, err := db.Pool().Exec(ctx, `DROP INDEX keys_name_trgm, keys_id_trgm, users_name_trgm, users_email_trgm`); err != nil {
		b.Fatal(err)
	}
	b.Run("scan", run)
}

// benchKeys is KEYWARD_BENCH_KEYS (at least least), or def when it is unset.
func benchKeys(b *testing.B, def, least int) int {
	b.Helper()
	v := os.Getenv("KEYWARD_BENCH_KEYS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		b.Fatalf("KEYWARD_BENCH_KEYS=%q: want a number of at least %d", v, least)
	}
	return n
}
