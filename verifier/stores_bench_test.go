package verifier_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/postgres/pgtest"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/verifier"
	"github.com/keyward/keyward/verifier/verifiertest"
)

// storeKeys is how many keys BenchmarkVerifyCacheHitStores seeds into each
// store: enough that the cache is not trivially small, few enough to seed a
// PostgreSQL database in seconds.
const storeKeys = 10_000

// BenchmarkVerifyCacheHitStores is BenchmarkVerifyCacheHit on each store, in
// one run: the same seeded keys, the same wiring (cache in front, usage
// recorder behind), the same hot set. A cache hit does not reach the store,
// so PostgreSQL's figure should match SQLite's; docs/performance.md quotes
// the ratio (the target: within 10%).
func BenchmarkVerifyCacheHitStores(b *testing.B) {
	ctx := context.Background()
	for _, st := range []struct {
		name string
		open func(b *testing.B) keyward.Store
	}{
		{"sqlite", func(b *testing.B) keyward.Store {
			db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "k.db"))
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
		{"postgres", func(b *testing.B) keyward.Store {
			db, err := postgres.Open(ctx, pgtest.NewDatabase(b))
			if err != nil {
				b.Fatal(err)
			}
			return db
		}},
	} {
		b.Run("store="+st.name, func(b *testing.B) {
			db := st.open(b)
			defer db.Close()
			if err := verifiertest.Seed(ctx, db, storeKeys, 5000); err != nil {
				b.Fatal(err)
			}
			scratch, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "usage.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer scratch.Close()
			cache := verifier.New(db, verifier.Options{MaxAge: time.Hour})
			svc, rec := wire(db, scratch, verifiertest.Hasher(), cache)
			defer rec.Close(ctx)
			keys := make([]string, hot)
			for i := range keys {
				keys[i] = verifiertest.Secret(i)
			}
			for _, k := range keys { // fill: from here on every answer is a hit
				if res, err := svc.Verify(ctx, keyward.VerifyInput{Key: k}); err != nil || res.Code != keyward.CodeValid {
					b.Fatalf("Verify = %s, %v", res.Code, err)
				}
			}
			misses := cache.Stats().Misses
			verifyValidLoop(b, ctx, svc, keys)
			b.StopTimer()
			if m := cache.Stats().Misses; m != misses {
				b.Fatal(fmt.Sprintf("%d cache misses during a cache-hit benchmark", m-misses))
			}
		})
	}
}
