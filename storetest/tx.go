package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward"
)

func testUpdateRollsBack(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	k := mustKey(t, s, ada, "key")

	var (
		newTn  = newTenant(t, "Rolled back")
		newU   = newUser(t, tn.ID, "Gone", "gone@example.com", keyward.KindUser)
		newK   = newKey(t, ada, "gone")
		newSes = &keyward.Session{ID: mustID(t, keyward.PrefixSession), TenantID: tn.ID, UserID: ada.ID,
			Hash: mustHash(t), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		newEv = &keyward.Event{ID: mustID(t, keyward.PrefixEvent), TenantID: tn.ID, Time: now,
			Action: keyward.ActionKeyCreated}
	)
	err := update(s, func(ctx context.Context, tx keyward.Tx) error {
		changed := *k
		changed.Name, changed.UpdatedAt = "renamed", now.Add(time.Hour)
		for _, step := range []error{
			tx.CreateTenant(ctx, newTn),
			tx.CreateUser(ctx, newU),
			tx.CreateKey(ctx, newK),
			tx.CreateSession(ctx, newSes),
			tx.InsertEvents(ctx, newEv),
			tx.UpdateKey(ctx, &changed),
			tx.TouchKeys(ctx, map[string]time.Time{k.ID: now}),
		} {
			if step != nil {
				return fmt.Errorf("step failed: %w", step)
			}
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update returned %v, want the error of fn", err)
	}
	_, err = get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Tenant, error) { return tx.TenantByID(ctx, newTn.ID) })
	wantCode(t, "rolled back tenant", err, keyward.ENotFound)
	_, err = getUser(s, tn.ID, newU.ID)
	wantCode(t, "rolled back user", err, keyward.ENotFound)
	_, err = getKey(s, tn.ID, newK.ID)
	wantCode(t, "rolled back key", err, keyward.ENotFound)
	_, err = get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Session, error) {
		return tx.SessionByHash(ctx, newSes.Hash)
	})
	wantCode(t, "rolled back session", err, keyward.ENotFound)
	events := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) {
		return tx.ListEvents(ctx, keyward.EventFilter{TenantID: tn.ID, PageSize: 10})
	})
	if events.Total != 0 {
		t.Errorf("rolled back event: %d events, want none", events.Total)
	}
	if got := mustGetKey(t, s, tn.ID, k.ID); got.Name != "key" || got.LastUsedAt != nil || !got.UpdatedAt.Equal(now) {
		t.Errorf("rolled back key change: %+v", got)
	}

	// A refusal from the store inside fn rolls back what came before it.
	err = update(s, func(ctx context.Context, tx keyward.Tx) error {
		if err := tx.CreateUser(ctx, newU); err != nil {
			return err
		}
		return tx.CreateUser(ctx, newUser(t, tn.ID, "Dup", "ADA@example.com", keyward.KindUser))
	})
	wantCode(t, "Update with a duplicate user", err, keyward.EConflict)
	_, err = getUser(s, tn.ID, newU.ID)
	wantCode(t, "user created before the refusal", err, keyward.ENotFound)
}

func testViewIsReadOnly(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	k := mustKey(t, s, ada, "key", func(k *keyward.Key) { k.ExpiresAt = ptr(now.Add(-time.Hour)) })
	writes := map[string]func(ctx context.Context, tx keyward.Tx) error{
		"CreateTenant": func(ctx context.Context, tx keyward.Tx) error {
			return tx.CreateTenant(ctx, newTenant(t, "Rogue"))
		},
		"CreateUser": func(ctx context.Context, tx keyward.Tx) error {
			return tx.CreateUser(ctx, newUser(t, tn.ID, "Rogue", "rogue@example.com", keyward.KindUser))
		},
		"DeleteKey": func(ctx context.Context, tx keyward.Tx) error { return tx.DeleteKey(ctx, tn.ID, k.ID) },
		"TouchKeys": func(ctx context.Context, tx keyward.Tx) error {
			return tx.TouchKeys(ctx, map[string]time.Time{k.ID: now})
		},
		"MarkExpiryRecorded": func(ctx context.Context, tx keyward.Tx) error {
			return tx.MarkExpiryRecorded(ctx, []string{k.ID})
		},
		"InsertEvents": func(ctx context.Context, tx keyward.Tx) error {
			return tx.InsertEvents(ctx, &keyward.Event{ID: mustID(t, keyward.PrefixEvent), TenantID: tn.ID,
				Time: now, Action: keyward.ActionAuthFailed})
		},
	}
	for name, write := range writes {
		err := s.View(context.Background(), func(tx keyward.Tx) error { return write(context.Background(), tx) })
		if err == nil {
			t.Errorf("%s in View succeeded, want an error", name)
		}
	}
	want := withOwner(k, ada)
	if diff := cmp.Diff(want, mustGetKey(t, s, tn.ID, k.ID), cmpOpts); diff != "" {
		t.Errorf("key after writes in View (-want +got):\n%s", diff)
	}
	if n := len(mustGet(t, s, func(ctx context.Context, tx keyward.Tx) ([]*keyward.Key, error) {
		return tx.ExpiredUnrecorded(ctx, now, 10)
	})); n != 1 {
		t.Errorf("MarkExpiryRecorded in View took effect: %d unrecorded keys, want 1", n)
	}
	users := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.UserPage, error) {
		return tx.ListUsers(ctx, keyward.UserFilter{TenantID: tn.ID, PageSize: 10})
	})
	events := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.EventPage, error) {
		return tx.ListEvents(ctx, keyward.EventFilter{TenantID: tn.ID, PageSize: 10})
	})
	_, err := get(s, func(ctx context.Context, tx keyward.Tx) (*keyward.Tenant, error) {
		return tx.TenantByName(ctx, "Rogue")
	})
	if users.Total != 1 || events.Total != 0 || keyward.ErrorCode(err) != keyward.ENotFound {
		t.Errorf("writes in View took effect: %d users, %d events, rogue tenant: %v", users.Total, events.Total, err)
	}
}

// testViewSnapshot checks that a View reads one snapshot: a write committed
// while it runs stays invisible to it.
func testViewSnapshot(t *testing.T, s keyward.Store) {
	tn := mustTenant(t, s, "Acme")
	mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	count := func(ctx context.Context, tx keyward.Tx) int {
		page, err := tx.ListUsers(ctx, keyward.UserFilter{TenantID: tn.ID, PageSize: 10})
		if err != nil {
			t.Errorf("ListUsers: %v", err)
			return -1
		}
		return page.Total
	}
	err := s.View(context.Background(), func(tx keyward.Tx) error {
		ctx := context.Background()
		before := count(ctx, tx)
		done := make(chan error, 1)
		go func() {
			done <- update(s, func(ctx context.Context, tx keyward.Tx) error {
				return tx.CreateUser(ctx, newUser(t, tn.ID, "Bob", "bob@example.com", keyward.KindUser))
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("concurrent Update: %w", err)
			}
		case <-time.After(30 * time.Second):
			return errors.New("an Update waited for a View to end")
		}
		if after := count(ctx, tx); after != before {
			t.Errorf("View saw %d users, then %d after a concurrent commit; want one snapshot", before, after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	users := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (*keyward.UserPage, error) {
		return tx.ListUsers(ctx, keyward.UserFilter{TenantID: tn.ID, PageSize: 10})
	})
	if users.Total != 2 {
		t.Errorf("after the View: %d users, want 2", users.Total)
	}
}

// testConcurrentKeyLimit checks that LockUser makes "count, then insert"
// atomic: concurrent creates never exceed the owner's maximum.
func testConcurrentKeyLimit(t *testing.T, s keyward.Store) {
	const (
		workers = 20
		limit   = 5
	)
	tn := mustTenant(t, s, "Acme")
	ada := mustUser(t, s, tn.ID, "Ada", "ada@example.com", keyward.KindUser)
	mustKey(t, s, ada, "revoked", func(k *keyward.Key) { k.RevokedAt = ptr(now) }) // not counted

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		errs    []error
	)
	start := make(chan struct{})
	for i := range workers {
		k := newKey(t, ada, fmt.Sprintf("key %d", i))
		wg.Go(func() {
			<-start
			err := update(s, func(ctx context.Context, tx keyward.Tx) error {
				if err := tx.LockUser(ctx, tn.ID, ada.ID); err != nil {
					return err
				}
				n, err := tx.CountLiveKeys(ctx, tn.ID, ada.ID, now)
				if err != nil {
					return err
				}
				if n >= limit {
					return nil
				}
				if err := tx.CreateKey(ctx, k); err != nil {
					return err
				}
				mu.Lock()
				created++
				mu.Unlock()
				return nil
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d Updates failed, first: %v", len(errs), workers, errs[0])
	}
	live := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) (int, error) {
		return tx.CountLiveKeys(ctx, tn.ID, ada.ID, now)
	})
	all := mustGet(t, s, func(ctx context.Context, tx keyward.Tx) ([]*keyward.Key, error) {
		return tx.OwnerKeys(ctx, tn.ID, ada.ID)
	})
	if live != limit || len(all) != limit+1 {
		t.Errorf("after %d concurrent creates: %d live keys (%d in all, %d creates committed), want %d live",
			workers, live, len(all), created, limit)
	}
}
