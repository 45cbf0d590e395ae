package verifier

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// An entry is sized to fill a size class of the Go allocator exactly (448
// bytes), which the heap figure of docs/performance.md depends on. A change
// to keyward.Key moves it: then retune entryText.
func TestEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n != 448 {
		t.Errorf("entry is %d bytes, want 448: retune entryText", n)
	}
}

// The table against a Go map, over random puts and removes of digests that
// share their home slots often (so probe sequences collide, wrap around the
// end, and removals must move entries back).
func TestTableAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 20 {
		var tb table
		ref := map[[32]byte]*entry{}
		digest := func() [32]byte {
			var d [32]byte
			// Few distinct homes, at the start or the end of any table, so
			// that probe sequences wrap around.
			h := uint64(r.IntN(6))
			if r.IntN(2) == 0 {
				h = ^h
			}
			binary.LittleEndian.PutUint64(d[8:16], h)
			d[31] = byte(r.IntN(20 + round*10))
			return d
		}
		for op := range 3000 {
			d := digest()
			switch r.IntN(3) {
			case 0, 1:
				e := &entry{digest: d, filled: int64(op)}
				tb.put(e)
				ref[d] = e
			case 2:
				tb.remove(&d)
				delete(ref, d)
			}
			if tb.n != len(ref) {
				t.Fatalf("round %d op %d: table holds %d, map %d", round, op, tb.n, len(ref))
			}
		}
		for d, e := range ref {
			if got := tb.get(&d); got != e {
				t.Fatalf("round %d: get(%x) = %p, want %p", round, d[:4], got, e)
			}
		}
		n := 0
		for _, e := range tb.slots {
			if e != nil {
				n++
				if ref[e.digest] != e {
					t.Fatalf("round %d: the table holds an entry the map does not", round)
				}
			}
		}
		if n != len(ref) {
			t.Fatalf("round %d: %d slots used, want %d", round, n, len(ref))
		}
		for i := 0; i < 50; i++ {
			d := digest()
			if _, ok := ref[d]; !ok && tb.get(&d) != nil {
				t.Fatalf("round %d: get of an absent digest found an entry", round)
			}
		}
	}
}

// Shards are kept apart in memory so that cores working on different
// shards do not share cache lines.
func TestShardSize(t *testing.T) {
	if n := unsafe.Sizeof(shard{}); n%64 != 0 {
		t.Errorf("shard is %d bytes, want a multiple of 64", n)
	}
}
