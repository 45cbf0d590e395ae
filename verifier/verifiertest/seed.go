// Package verifiertest builds large, reproducible Keyward databases for the
// verification benchmarks and the load harness (cmd/kwload): one tenant with
// n keys whose secrets are derived from their index, so that nothing but the
// index has to be kept to present key i again.
//
// Keys are written straight through the store's Tx.CreateKey in large
// batches, without the service's per-key checks and events: this is test
// data, not a way to issue keys.
package verifiertest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/sqlite"
)

// Pepper is the server pepper of every seeded database.
var Pepper = []byte("keyward-bench-pepper-0123456789abcdef0123")

// KeysPerOwner is how many keys each seeded system user owns.
const KeysPerOwner = 1000

// TenantName is the seeded tenant's name; its ID is TenantID.
const (
	TenantName = "bench"
	TenantID   = "ten_bench000000000000000000"
)

// created is when every seeded key and user was made.
var created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// stream is a deterministic source of randomness for one purpose and index.
func stream(purpose uint64, i int) *rand.ChaCha8 {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[0:], purpose)
	binary.LittleEndian.PutUint64(seed[8:], uint64(i))
	return rand.NewChaCha8(seed)
}

// Secret is the secret of seeded key i.
func Secret(i int) string {
	s, err := keyward.NewSecret(stream(1, i), "kw")
	if err != nil {
		panic(err)
	}
	return s
}

// KeyID is the ID of seeded key i.
func KeyID(i int) string { return mustID(stream(2, i), keyward.PrefixKey) }

// OwnerID is the ID of the system user that owns seeded key i.
func OwnerID(i int) string { return mustID(stream(3, i/KeysPerOwner), keyward.PrefixUser) }

func mustID(r *rand.ChaCha8, prefix string) string {
	id, err := keyward.NewID(r, prefix)
	if err != nil {
		panic(err)
	}
	return id
}

// Hasher is the hasher of every seeded database.
func Hasher() *keyward.Hasher {
	h, err := keyward.NewHasher(Pepper)
	if err != nil {
		panic(err)
	}
	return h
}

// Seed writes the tenant (API keys on), one system user per KeysPerOwner
// keys and n active admin keys into an empty store, batch keys per
// transaction.
func Seed(ctx context.Context, st keyward.Store, n, batch int) error {
	if batch <= 0 {
		batch = 10000
	}
	h := Hasher()
	set := keyward.DefaultSettings()
	set.APIKeysEnabled = true
	set.MaxKeysPerServiceUser = KeysPerOwner
	err := st.Update(ctx, func(tx keyward.Tx) error {
		return tx.CreateTenant(ctx, &keyward.Tenant{ID: TenantID, Name: TenantName, CreatedAt: created, Settings: set})
	})
	if err != nil {
		return fmt.Errorf("seed tenant: %w", err)
	}
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		err := st.Update(ctx, func(tx keyward.Tx) error {
			for i := lo; i < hi; i++ {
				if i%KeysPerOwner == 0 {
					o := i / KeysPerOwner
					err := tx.CreateUser(ctx, &keyward.User{ID: OwnerID(i), TenantID: TenantID,
						Email: fmt.Sprintf("service-%06d@bench.example", o), Name: fmt.Sprintf("service %06d", o),
						Kind: keyward.KindSystem, Roles: []string{}, Licensed: true, CreatedAt: created, UpdatedAt: created})
					if err != nil {
						return fmt.Errorf("seed owner %d: %w", o, err)
					}
				}
				secret := Secret(i)
				k := &keyward.Key{ID: KeyID(i), TenantID: TenantID, Name: fmt.Sprintf("bench key %07d", i),
					OwnerID: OwnerID(i), Role: keyward.KeyRoleAdmin, Hash: h.Hash(secret),
					Start: keyward.SecretStart(secret), CreatedAt: created, UpdatedAt: created}
				if err := tx.CreateKey(ctx, k); err != nil {
					return fmt.Errorf("seed key %d: %w", i, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Open opens a seeded SQLite database of n keys. Seeding a million keys
// takes a while, so the file is kept in dir (os.TempDir() when empty) under
// a name that says its size, and reused by later runs; a file that is not
// complete is never reused. The caller closes the store.
func Open(ctx context.Context, dir string, n int) (*sqlite.DB, string, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("keyward-seed-v1-%d.db", n))
	if _, err := os.Stat(path); err == nil {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, "", err
		}
		if err := check(ctx, db, n); err == nil {
			return db, path, nil
		}
		db.Close()
		os.Remove(path)
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	defer os.Remove(tmp)
	db, err := sqlite.Open(ctx, tmp)
	if err != nil {
		return nil, "", err
	}
	if err := Seed(ctx, db, n, 0); err != nil {
		db.Close()
		return nil, "", err
	}
	if err := db.Close(); err != nil {
		return nil, "", err
	}
	// Closing checkpoints the WAL; if one is left, it moves with the file.
	os.Remove(tmp + "-shm")
	os.Remove(path + "-wal")
	if _, err := os.Stat(tmp + "-wal"); err == nil {
		if err := os.Rename(tmp+"-wal", path+"-wal"); err != nil {
			return nil, "", err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, "", err
	}
	db, err = sqlite.Open(ctx, path)
	if err != nil {
		return nil, "", err
	}
	if err := check(ctx, db, n); err != nil {
		db.Close()
		return nil, "", err
	}
	return db, path, nil
}

// check makes sure the first and last seeded keys are there and nothing beyond.
func check(ctx context.Context, db keyward.Store, n int) error {
	h := Hasher()
	return db.View(ctx, func(tx keyward.Tx) error {
		for _, i := range []int{0, n - 1} {
			k, err := tx.KeyByHash(ctx, h.Hash(Secret(i)))
			if err != nil {
				return fmt.Errorf("seeded key %d: %w", i, err)
			}
			if k.ID != KeyID(i) {
				return errors.New("seeded key has another id")
			}
		}
		if _, err := tx.KeyByHash(ctx, h.Hash(Secret(n))); !keyward.IsCode(err, keyward.ENotFound) {
			return fmt.Errorf("more than %d keys seeded (%v)", n, err)
		}
		return nil
	})
}
