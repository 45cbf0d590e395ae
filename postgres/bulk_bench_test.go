package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/postgres/pgtest"
)

// BenchmarkBulkRevoke revokes every key of a tenant of KEYWARD_BENCH_KEYS
// keys (default 100,000) through Service.BulkRevoke ({"all": true}: one
// transaction, one key.revoked event a key), as the API does. Outside the
// timer, each iteration waits for the store to settle the revocation (a
// mark, from 1,000 keys: settle-s) and then undoes it.
//
//	go test ./postgres/ -run '^$' -bench BulkRevoke -benchtime 3x
func BenchmarkBulkRevoke(b *testing.B) {
	n := benchKeys(b, 100_000, 1)
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tn := &keyward.Tenant{ID: "ten_bench", Name: "Bench", CreatedAt: now, Settings: keyward.DefaultSettings()}
	tn.Settings.APIKeysEnabled = true
	admin := &keyward.User{ID: "usr_admin", TenantID: tn.ID, Email: "ada@example.com", Name: "Ada",
		Kind: keyward.KindUser, Roles: []string{keyward.RoleTenantAdmin}, Licensed: true, CreatedAt: now, UpdatedAt: now}
	if err := db.Update(ctx, func(tx keyward.Tx) error {
		if err := tx.CreateTenant(ctx, tn); err != nil {
			return err
		}
		return tx.CreateUser(ctx, admin)
	}); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO users (id, tenant_id, email, name, kind, roles, licensed, password_hash, created_at, updated_at)
			SELECT 'usr_' || i, @tenant, 'u' || i || '@example.com', 'User ' || i,
				CASE WHEN i % 10 = 0 THEN 'system' ELSE 'user' END, '[]', true, '', @now, @now
			FROM generate_series(1, @users) AS i`,
		`INSERT INTO keys (id, tenant_id, owner_id, name, description, role, scopes, meta, hash, start,
				disabled, created_at, updated_at)
			SELECT 'key_' || substr(md5(i::text || 'k'), 1, 22), @tenant, 'usr_' || (1 + i % @users),
				'key ' || i, '', 'readonly', '[]', '{}', decode(md5(i::text), 'hex'), 'kw_Ab3d', false,
				@now::bigint - i::bigint * 1000000, @now::bigint - i::bigint * 1000000
			FROM generate_series(1, @keys) AS i`,
		`ANALYZE`,
	} {
		if _, err := db.Pool().Exec(ctx, q, pgx.NamedArgs{"tenant": tn.ID, "now": now.UnixMicro(),
			"users": max(1, n/20), "keys": n}); err != nil {
			b.Fatalf("%.60s…: %v", q, err)
		}
	}
	hasher, err := keyward.NewHasher([]byte("a pepper of at least thirty-two bytes, for benchmarks"))
	if err != nil {
		b.Fatal(err)
	}
	svc := keyward.NewService(db, hasher, keyward.Options{Now: func() time.Time { return now }})
	p := &keyward.Principal{Tenant: tn, User: admin}
	var settle time.Duration
	for b.Loop() {
		res, err := svc.BulkRevoke(ctx, p, keyward.BulkRevokeInput{All: true, Reason: new("incident 42")})
		if err != nil {
			b.Fatal(err)
		}
		if res.Revoked != n {
			b.Fatalf("revoked %d keys, want %d", res.Revoked, n)
		}
		b.StopTimer()
		// How long the store takes to write the keys' rows and events after
		// the answer (a mark), then the revocation is undone.
		start := time.Now()
		for {
			var pending int
			if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM key_revocations`).Scan(&pending); err != nil {
				b.Fatal(err)
			}
			if pending == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		settle += time.Since(start)
		for _, q := range []string{
			`UPDATE keys SET revoked_at = NULL, revoked_by = NULL, revoke_reason = NULL, updated_at = created_at`,
			`DELETE FROM events WHERE action = 'key.revoked'`,
			`VACUUM ANALYZE keys`,
			`VACUUM ANALYZE events`,
		} {
			if _, err := db.Pool().Exec(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n), "keys")
	b.ReportMetric(settle.Seconds()/float64(b.N), "settle-s")
}
