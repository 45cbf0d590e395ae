package keyward

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"math/big"
	"sync"
	"unsafe"
)

// A secret is "<prefix>_<body><checksum>": the body is 32 random bytes in
// fixed-width base62 (43 characters), the checksum the CRC32 of everything
// before it in fixed-width base62 (6 characters). The checksum lets the
// verifier and secret scanners refuse look-alikes without any lookup.
const (
	secretBodyLen     = 43
	secretChecksumLen = 6
	secretRandomBytes = 32
	// SecretStartLen is how many characters after the prefix's "_" are kept for display.
	SecretStartLen = 4
	// MaxSecretLen bounds what the parser looks at: prefix (12) + "_" + 49.
	MaxSecretLen = 12 + 1 + secretBodyLen + secretChecksumLen
)

const base62Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var base62Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base62Alphabet); i++ {
		t[base62Alphabet[i]] = int8(i)
	}
	return t
}()

// encodeBase62 writes n into dst, most significant digit first, left-padded
// with '0' to len(dst). n is consumed.
func encodeBase62(dst []byte, n *big.Int) {
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := len(dst) - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		dst[i] = base62Alphabet[mod.Int64()]
	}
}

func encodeUint32Base62(dst []byte, v uint32) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = base62Alphabet[v%62]
		v /= 62
	}
}

// ValidKeyPrefix reports whether p can prefix a secret: 2..12 of [a-z0-9].
func ValidKeyPrefix(p string) bool {
	if len(p) < 2 || len(p) > 12 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// NewSecret draws a fresh secret with the given tenant prefix from rand.
func NewSecret(rand io.Reader, prefix string) (string, error) {
	if !ValidKeyPrefix(prefix) {
		return "", errors.New("keyward: invalid key prefix")
	}
	var raw [secretRandomBytes]byte
	if _, err := io.ReadFull(rand, raw[:]); err != nil {
		return "", err
	}
	buf := make([]byte, len(prefix)+1+secretBodyLen+secretChecksumLen)
	n := copy(buf, prefix)
	buf[n] = '_'
	n++
	encodeBase62(buf[n:n+secretBodyLen], new(big.Int).SetBytes(raw[:]))
	n += secretBodyLen
	encodeUint32Base62(buf[n:], crc32.ChecksumIEEE(buf[:n]))
	return string(buf), nil
}

// ParseSecret checks a presented secret's shape and checksum without any
// lookup. It returns false for anything that cannot be a Keyward secret.
// It does not allocate.
func ParseSecret(s string) bool {
	if len(s) > MaxSecretLen {
		return false
	}
	us := -1
	for i := 0; i < len(s); i++ {
		if s[i] == '_' {
			us = i
			break
		}
	}
	if us < 2 || us > 12 || len(s)-us-1 != secretBodyLen+secretChecksumLen {
		return false
	}
	if !ValidKeyPrefix(s[:us]) {
		return false
	}
	body := s[us+1:]
	// Every character must be base62: or-ing the table's answers and looking
	// at the sign once is cheaper than a branch per character.
	bad := int8(0)
	for i := 0; i < len(body); i++ {
		bad |= base62Index[body[i]]
	}
	if bad < 0 {
		return false
	}
	// 62^43 > 2^256, so a body may encode a number too large for 32 bytes; the
	// checksum covers that case in practice, and such a string was never issued.
	// The checksum characters are decoded and compared with the CRC rather than
	// the CRC encoded: multiplying is cheaper than dividing, and fixed-width
	// base62 of six digits is one-to-one below 62^6, which holds every uint32.
	var sum uint64
	for i := secretBodyLen; i < len(body); i++ {
		sum = sum*62 + uint64(base62Index[body[i]])
	}
	return sum == uint64(crc32ChecksumIEEEString(s[:us+1+secretBodyLen]))
}

// crc32ChecksumIEEEString is crc32.ChecksumIEEE over a string without
// converting it: crc32.Update's slice escapes (it is called through a function
// variable), so []byte(s) would allocate on every verification. A view of the
// string's bytes does not allocate, and lets crc32 use its table-sliced or
// CLMUL code, about four times faster than a byte-at-a-time loop here; crc32
// only reads the bytes.
func crc32ChecksumIEEEString(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// SecretStart is the part of a secret kept for display: prefix, "_" and a few characters.
func SecretStart(secret string) string {
	for i := 0; i < len(secret); i++ {
		if secret[i] == '_' {
			end := i + 1 + SecretStartLen
			if end > len(secret) {
				end = len(secret)
			}
			return secret[:end]
		}
	}
	return ""
}

// Hasher turns secrets into the digests that stores keep. It is safe for
// concurrent use and, through a pool of keyed MACs, does not allocate.
type Hasher struct {
	pepper []byte
	pool   sync.Pool // of *mac
}

type mac struct {
	h   hash.Hash
	out [sha256.Size]byte
}

// NewHasher returns a Hasher keyed with the server pepper (at least 32 bytes).
func NewHasher(pepper []byte) (*Hasher, error) {
	if len(pepper) < 32 {
		return nil, errors.New("keyward: pepper must be at least 32 bytes")
	}
	h := &Hasher{pepper: append([]byte(nil), pepper...)}
	h.pool.New = func() any { return &mac{h: hmac.New(sha256.New, h.pepper)} }
	return h, nil
}

// Digest is HMAC-SHA-256(pepper, secret). A fast MAC is right for a 256-bit
// random secret; a password hash would only burn CPU on every verification.
func (h *Hasher) Digest(secret string) (d [sha256.Size]byte) {
	m := h.pool.Get().(*mac)
	m.h.Reset()
	// The MAC reads the secret's bytes in place: it neither keeps nor
	// changes what it is given, so no copy is needed.
	m.h.Write(unsafe.Slice(unsafe.StringData(secret), len(secret)))
	m.h.Sum(m.out[:0])
	d = m.out
	h.pool.Put(m)
	return d
}

// Hash is Digest as a slice, for stores.
func (h *Hasher) Hash(secret string) []byte {
	d := h.Digest(secret)
	return d[:]
}

// Equal compares two digests in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }

// equalDigest is Equal for a stored digest and a fresh one, on the hot path:
// four 64-bit XORs folded together, with no branch on the contents, about
// a tenth of the cost of the byte-wise comparison.
func equalDigest(stored []byte, d *[sha256.Size]byte) bool {
	if len(stored) != sha256.Size {
		return false
	}
	le := binary.LittleEndian
	x := (le.Uint64(stored[0:]) ^ le.Uint64(d[0:])) | (le.Uint64(stored[8:]) ^ le.Uint64(d[8:])) |
		(le.Uint64(stored[16:]) ^ le.Uint64(d[16:])) | (le.Uint64(stored[24:]) ^ le.Uint64(d[24:]))
	return x == 0 // how the digests differ is folded away before this one test
}
