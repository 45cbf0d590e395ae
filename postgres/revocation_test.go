package postgres_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/postgres/pgtest"
	"github.com/keyward/keyward/storetest"
)

// TestStoreWithMarks is the conformance suite with every set revocation a
// pending mark: whatever a test reads after it, it must read what a
// revocation row by row would have left.
func TestStoreWithMarks(t *testing.T) {
	storetest.RunWith(t, storetest.Config{OwnRevocationEventIDs: true}, func(t *testing.T) keyward.Store {
		return openWith(t, postgres.OpenMarking, pgtest.NewDatabase(t))
	})
}

// TestMarksAgreeWithRowByRow: see storetest.MarksAgreeWithRowByRow.
func TestMarksAgreeWithRowByRow(t *testing.T) {
	ctx := context.Background()
	marks := openWith(t, postgres.OpenMarking, pgtest.NewDatabase(t))
	rows := openWith(t, postgres.Open, pgtest.NewDatabase(t))
	storetest.MarksAgreeWithRowByRow(t, marks, rows, 200, marks.SettleChunk, func() int {
		var n int
		if err := marks.Pool().QueryRow(ctx, `SELECT count(*) FROM key_revocations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	})
}

// TestMarkIsAnnounced: a revocation by mark changes no key row, so the
// store announces the revoked keys' digests itself, for the other nodes'
// caches: every one is heard.
func TestMarkIsAnnounced(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, 1, 1000)
	r := c.listen(t, 0, postgres.ListenOptions{})
	marking := openWith(t, postgres.OpenMarking, c.url)
	p := c.p(t, 0)
	var want []string
	for i := range 230 {
		k, _, err := c.nodes[0].svc.CreateKey(ctx, p, keyward.KeyInput{Name: fmt.Sprintf("key %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, hex.EncodeToString(k.Hash))
	}
	own, err := c.nodes[0].svc.GetKey(ctx, p, c.adminKey)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, hex.EncodeToString(own.Hash))
	slices.Sort(want)
	r.take()
	var revoked []keyward.RevokedKey
	if err := marking.Update(ctx, func(tx keyward.Tx) (err error) {
		revoked, err = tx.RevokeKeys(ctx, keyward.RevokeSpec{TenantID: c.tenant, At: time.Now()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(revoked) != len(want) {
		t.Fatalf("revoked %d keys, want %d", len(revoked), len(want))
	}
	var pending int
	if err := marking.Pool().QueryRow(ctx, `SELECT count(*) FROM key_revocations`).Scan(&pending); err != nil || pending != 1 {
		t.Fatalf("%d marks pending (%v), want the revocation's", pending, err)
	}
	r.waitFor(t, "every revoked key's digest", func(chs []keyward.Change, _ []string) bool {
		return len(hashes(chs)) >= len(want)
	})
	got := hashes(r.take())
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("heard %d digests, want %d; the first differences: %v", len(got), len(want), firstDiffs(got, want))
	}
}
