package keyward

import "testing"

// equalDigest must tell apart digests that differ in any single bit, and
// refuse stored digests of the wrong length.
func TestEqualDigest(t *testing.T) {
	var d [32]byte
	for i := range d {
		d[i] = byte(i*7 + 1)
	}
	if !equalDigest(d[:], &d) {
		t.Fatal("equalDigest(d, d) = false")
	}
	for i := range 32 {
		for bit := range 8 {
			other := d
			other[i] ^= 1 << bit
			if equalDigest(other[:], &d) {
				t.Fatalf("digests differing in byte %d bit %d compare equal", i, bit)
			}
		}
	}
	for _, n := range []int{0, 31, 33, 64} {
		stored := make([]byte, n)
		copy(stored, d[:])
		if equalDigest(stored, &d) {
			t.Fatalf("a stored digest of %d bytes compares equal", n)
		}
	}
}
