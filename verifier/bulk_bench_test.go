package verifier_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testfile"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verifier"
	"github.com/keyward/keyward/verifier/verifiertest"
)

// bulkKeys is how many keys BenchmarkBulkRevokeCached revokes at once.
const bulkKeys = 100_000

// BenchmarkBulkRevokeCached revokes 100,000 keys that every one sits in the
// cache as valid (the tenant's every key, through Service.BulkRevoke as the
// API does it: one transaction, one event a key, the cache told after
// commit), then verifies each of them once more: every answer must be
// REVOKED. It reports the revocation's time (revoke-s) and the time to
// re-verify them all (reverify-s). Run it with -benchtime 1x: each
// iteration needs a fresh database. The warming verifications leave 100,000
// keys' usage to flush, which the recorder writes in chunks while the
// revocation runs, as a server would; with KEYWARD_BENCH_FLUSH_FIRST set it
// is written before the clock starts, and revoke-s is the revocation alone.
// With KEYWARD_BENCH_TRAIL_FIRST set it reads the audit trail's first page
// right after the revocation, before re-verifying, and reports how long that
// read took (trail-s): on SQLite it waits for the keys' events to be written.
func BenchmarkBulkRevokeCached(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		db := seededCopy(b, bulkKeys)
		cache := verifier.New(db, verifier.Options{MaxAge: time.Hour})
		svc, rec := wire(db, db, verifiertest.Hasher(), cache)
		secrets := make([]string, bulkKeys)
		for i := range secrets {
			secrets[i] = verifiertest.Secret(i)
			if res, err := svc.Verify(ctx, keyward.VerifyInput{Key: secrets[i]}); err != nil || res.Code != keyward.CodeValid {
				b.Fatalf("warming key %d: %s, %v", i, res.Code, err)
			}
		}
		admin := &keyward.Principal{Tenant: &keyward.Tenant{ID: verifiertest.TenantID}, User: &keyward.User{
			ID: verifiertest.OwnerID(0), TenantID: verifiertest.TenantID, Kind: keyward.KindUser,
			Roles: []string{keyward.RoleTenantAdmin}}}
		if os.Getenv("KEYWARD_BENCH_FLUSH_FIRST") != "" {
			if err := rec.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		res, err := svc.BulkRevoke(ctx, admin, keyward.BulkRevokeInput{All: true})
		revoke := time.Since(start)
		if err != nil || res.Revoked != bulkKeys {
			b.Fatalf("BulkRevoke: %+v, %v; want %d revoked", res, err, bulkKeys)
		}
		if os.Getenv("KEYWARD_BENCH_TRAIL_FIRST") != "" {
			// The first page of the audit trail, read at once: on SQLite
			// it waits until every key's event is written.
			start = time.Now()
			page, err := svc.ListEvents(ctx, admin, keyward.EventQuery{PageSize: 1})
			if err != nil || page.Total < bulkKeys {
				b.Fatalf("ListEvents after the bulk revocation: %v; total %d, want at least %d", err, page.Total, bulkKeys)
			}
			b.ReportMetric(time.Since(start).Seconds(), "trail-s")
		}
		start = time.Now()
		for i, s := range secrets {
			if r, err := svc.Verify(ctx, keyward.VerifyInput{Key: s}); err != nil || r.Code != keyward.CodeRevoked {
				b.Fatalf("key %d after the bulk revocation: %s, %v; want REVOKED", i, r.Code, err)
			}
		}
		reverify := time.Since(start)
		b.StopTimer()
		b.ReportMetric(revoke.Seconds(), "revoke-s")
		b.ReportMetric(reverify.Seconds(), "reverify-s")
		rec.Close(ctx)
		db.Close()
		b.StartTimer()
	}
}

// seededCopy opens a private copy of the seeded database of n keys (seeded
// once and kept, see verifiertest.Open), for benchmarks that change it.
func seededCopy(b *testing.B, n int) *sqlite.DB {
	b.Helper()
	ctx := context.Background()
	seeded, path, err := verifiertest.Open(ctx, "", n)
	if err != nil {
		b.Fatal(err)
	}
	if err := seeded.Close(); err != nil { // checkpoints the WAL: the file is whole
		b.Fatal(err)
	}
	dst := filepath.Join(b.TempDir(), "copy.db")
	testfile.Copy(b, path, dst)
	db, err := sqlite.Open(ctx, dst)
	if err != nil {
		b.Fatal(err)
	}
	return db
}
