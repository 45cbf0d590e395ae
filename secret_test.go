package keyward_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash/crc32"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// The reference implementation of the secret format of DESIGN.md, written
// independently of secret.go so that the two check each other:
// "<prefix>_<43 base62 chars of 32 random bytes><6 base62 chars of CRC32>".
const refAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var refSecretShape = regexp.MustCompile(`^([a-z0-9]{2,12})_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$`)

// refChecksum is the fixed-width base62 CRC32 (IEEE) of s.
func refChecksum(s string) string {
	v := crc32.ChecksumIEEE([]byte(s))
	out := make([]byte, 6)
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = refAlphabet[v%62]
		v /= 62
	}
	return string(out)
}

// refValidSecret reports whether s has the documented shape and checksum.
func refValidSecret(s string) bool {
	m := refSecretShape.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	return refChecksum(m[1]+"_"+m[2]) == m[3]
}

// refDecodeBody reads a base62 body as a number.
func refDecodeBody(tb testing.TB, body string) *big.Int {
	tb.Helper()
	n := new(big.Int)
	for _, c := range []byte(body) {
		i := strings.IndexByte(refAlphabet, c)
		if i < 0 {
			tb.Fatalf("body %q holds %q, not base62", body, c)
		}
		n.Mul(n, big.NewInt(62))
		n.Add(n, big.NewInt(int64(i)))
	}
	return n
}

// withChecksum completes prefix_body with the checksum the reference computes,
// so that only the rule under test can refuse the result.
func withChecksum(prefixAndBody string) string { return prefixAndBody + refChecksum(prefixAndBody) }

func mustSecret(tb testing.TB, prefix string) string {
	tb.Helper()
	s, err := keyward.NewSecret(rand.Reader, prefix)
	if err != nil {
		tb.Fatalf("NewSecret(%q): %v", prefix, err)
	}
	return s
}

var validPrefixes = []string{"kw", "ab", "a1", "00", "9z", "acme", "k2x", "prod2026", "abcdefghijkl", "0123456789ab"}

func TestNewSecretRoundTrip(t *testing.T) {
	for _, prefix := range validPrefixes {
		t.Run(prefix, func(t *testing.T) {
			seen := map[string]bool{}
			for range 50 {
				s := mustSecret(t, prefix)
				if seen[s] {
					t.Fatalf("NewSecret(%q) repeated %q", prefix, s)
				}
				seen[s] = true
				if got, want := len(s), len(prefix)+1+43+6; got != want {
					t.Errorf("len(%q) = %d, want %d", s, got, want)
				}
				if !strings.HasPrefix(s, prefix+"_") {
					t.Errorf("%q does not start with %q", s, prefix+"_")
				}
				if !refValidSecret(s) {
					t.Errorf("%q does not have the documented shape and checksum", s)
				}
				if !keyward.ParseSecret(s) {
					t.Errorf("ParseSecret(%q) = false for a fresh secret", s)
				}
				if got, want := keyward.SecretStart(s), s[:len(prefix)+1+keyward.SecretStartLen]; got != want {
					t.Errorf("SecretStart(%q) = %q, want %q", s, got, want)
				}
			}
		})
	}
}

// The body is the 32 random bytes in fixed-width base62, most significant first.
func TestNewSecretEncodesRandomBytes(t *testing.T) {
	for _, raw := range [][]byte{
		bytes.Repeat([]byte{0}, 32),
		bytes.Repeat([]byte{0xff}, 32),
		append(bytes.Repeat([]byte{0}, 31), 1),
		[]byte("0123456789abcdef0123456789abcdef"),
	} {
		s, err := keyward.NewSecret(bytes.NewReader(raw), "kw")
		if err != nil {
			t.Fatalf("NewSecret: %v", err)
		}
		body := s[3 : 3+43]
		if got, want := refDecodeBody(t, body), new(big.Int).SetBytes(raw); got.Cmp(want) != 0 {
			t.Errorf("body of %q decodes to %v, want %v", s, got, want)
		}
		if got, want := s[3+43:], refChecksum(s[:3+43]); got != want {
			t.Errorf("checksum of %q = %q, want %q", s, got, want)
		}
	}
	s, err := keyward.NewSecret(bytes.NewReader(make([]byte, 32)), "kw")
	if err != nil {
		t.Fatal(err)
	}
	if want := withChecksum("kw_" + strings.Repeat("0", 43)); s != want {
		t.Errorf("NewSecret(zeros) = %q, want %q", s, want)
	}
}

func TestNewSecretRefusals(t *testing.T) {
	for _, prefix := range []string{"", "k", "abcdefghijklm", "KW", "Kw", "k_w", "k-w", "kw ", " kw", "ké", "kw\x00", "k.w"} {
		if s, err := keyward.NewSecret(rand.Reader, prefix); err == nil {
			t.Errorf("NewSecret(%q) = %q, want an error", prefix, s)
		}
	}
	if s, err := keyward.NewSecret(bytes.NewReader(make([]byte, 31)), "kw"); err == nil {
		t.Errorf("NewSecret with 31 random bytes = %q, want an error", s)
	}
}

func TestValidKeyPrefix(t *testing.T) {
	for _, p := range validPrefixes {
		if !keyward.ValidKeyPrefix(p) {
			t.Errorf("ValidKeyPrefix(%q) = false, want true", p)
		}
	}
	for _, p := range []string{"", "k", "abcdefghijklm", "KW", "kW", "k_", "k-w", "k w", "ké", "k/w", "k.w"} {
		if keyward.ValidKeyPrefix(p) {
			t.Errorf("ValidKeyPrefix(%q) = true, want false", p)
		}
	}
}

// Any single-character change of a valid secret is refused: substitution by
// any byte, deletion, insertion, and multi-byte runes.
func TestParseSecretRefusesEverySingleChange(t *testing.T) {
	for _, prefix := range []string{"kw", "abcdefghijkl"} {
		s := mustSecret(t, prefix)
		for i := 0; i <= len(s); i++ {
			if i < len(s) {
				for b := 0; b < 256; b++ {
					if byte(b) == s[i] {
						continue
					}
					m := s[:i] + string([]byte{byte(b)}) + s[i+1:]
					if keyward.ParseSecret(m) {
						t.Errorf("ParseSecret accepts %q: byte %d of %q changed to %q", m, i, s, byte(b))
					}
				}
				if m := s[:i] + s[i+1:]; keyward.ParseSecret(m) {
					t.Errorf("ParseSecret accepts %q: byte %d of %q deleted", m, i, s)
				}
				for _, r := range []string{"é", "ß", "\u00a0", "０", "🔑"} {
					if m := s[:i] + r + s[i+1:]; keyward.ParseSecret(m) {
						t.Errorf("ParseSecret accepts %q: byte %d of %q changed to %q", m, i, s, r)
					}
				}
			}
			for _, c := range []byte(refAlphabet + "_") {
				if m := s[:i] + string(c) + s[i:]; keyward.ParseSecret(m) {
					t.Errorf("ParseSecret accepts %q: %q inserted at %d of %q", m, c, i, s)
				}
			}
		}
	}
}

func TestParseSecretRefusals(t *testing.T) {
	body := strings.Repeat("Ab3", 14) + "x" // 43 base62 characters
	good := withChecksum("kw_" + body)
	if !keyward.ParseSecret(good) {
		t.Fatalf("ParseSecret(%q) = false for a hand-made valid secret", good)
	}
	for _, c := range []struct{ name, s string }{
		{"empty", ""},
		{"underscore only", "_"},
		{"prefix only", "kw_"},
		{"no underscore", "kw" + body + refChecksum("kw_"+body)},
		{"body 42", withChecksum("kw_" + body[:42])},
		{"body 44", withChecksum("kw_" + body + "A")},
		{"checksum 5", good[:len(good)-1]},
		{"checksum 7", good + "0"},
		{"far too long", withChecksum("kw_" + strings.Repeat("A", 1000))},
		{"longer than MaxSecretLen", strings.Repeat("a", keyward.MaxSecretLen+1)},
		{"leading space", " " + good},
		{"trailing space", good + " "},
		{"trailing newline", good + "\n"},
		{"bearer", "Bearer " + good},
		{"upper-case prefix", withChecksum("KW_" + body)},
		{"mixed-case prefix", withChecksum("Kw_" + body)},
		{"prefix of 1", withChecksum("k_" + body)},
		{"prefix of 13", withChecksum("abcdefghijklm_" + body)},
		{"empty prefix", withChecksum("_" + body)},
		{"dash in prefix", withChecksum("k-w_" + body)},
		{"dot in prefix", withChecksum("k.w_" + body)},
		{"unicode prefix", withChecksum("ké_" + body)},
		{"two underscores", withChecksum("kw_" + body[:20] + "_" + body[21:])},
		{"dash in body", withChecksum("kw_" + body[:42] + "-")},
		{"plus in body", withChecksum("kw_+" + body[1:])},
		{"slash in body", withChecksum("kw_/" + body[1:])},
		{"equals in body", withChecksum("kw_" + body[:42] + "=")},
		{"space in body", withChecksum("kw_ " + body[1:])},
		{"NUL in body", withChecksum("kw_\x00" + body[1:])},
		{"high byte in body", withChecksum("kw_\xff" + body[1:])},
		{"bad char in checksum", good[:len(good)-1] + "-"},
		{"checksum of another body", "kw_" + body + refChecksum("kw_"+strings.Repeat("0", 43))},
		{"checksum without the prefix", "kw_" + body + refChecksum(body)},
		{"checksum of another prefix", "kx_" + body + refChecksum("kw_"+body)},
		{"session token", "kwsess_" + body},
	} {
		if keyward.ParseSecret(c.s) {
			t.Errorf("%s: ParseSecret(%q) = true, want false", c.name, c.s)
		}
	}
	// A body that encodes more than 32 bytes was never issued, but has the
	// documented shape; what matters is that the parser agrees with the format.
	huge := withChecksum("kw_" + strings.Repeat("z", 43))
	if got, want := keyward.ParseSecret(huge), refValidSecret(huge); got != want {
		t.Errorf("ParseSecret(%q) = %v, reference says %v", huge, got, want)
	}
}

func TestParseSecretDoesNotAllocate(t *testing.T) {
	s := mustSecret(t, "abcdefghijkl")
	bad := s[:len(s)-1] + "!"
	if n := testing.AllocsPerRun(100, func() {
		keyward.ParseSecret(s)
		keyward.ParseSecret(bad)
	}); n != 0 {
		t.Errorf("ParseSecret allocates %v times per call pair, want 0", n)
	}
}

func TestSecretStart(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"kw_Ab3dXYZ", "kw_Ab3d"},
		{"acme_0000000000", "acme_0000"},
		{"kw_Ab3d", "kw_Ab3d"},
		{"kw_Ab", "kw_Ab"},
		{"kw_", "kw_"},
		{"_abcdef", "_abcd"},
		{"no-underscore", ""},
		{"", ""},
	} {
		if got := keyward.SecretStart(c.in); got != c.want {
			t.Errorf("SecretStart(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	s := mustSecret(t, "kw")
	if start := keyward.SecretStart(s); len(start) != len("kw_")+keyward.SecretStartLen || keyward.ParseSecret(start) {
		t.Errorf("SecretStart(%q) = %q: want 7 characters that are not a secret", s, start)
	}
}

// FuzzParseSecret: whatever the input, ParseSecret does not panic, and it
// accepts exactly the strings that have the documented shape, checked by the
// independent reference above. Seeds live in testdata/fuzz/FuzzParseSecret.
func FuzzParseSecret(f *testing.F) {
	f.Add(mustSecret(f, "kw"))
	f.Add(mustSecret(f, "abcdefghijkl"))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		got := keyward.ParseSecret(s)
		if want := refValidSecret(s); got != want {
			t.Fatalf("ParseSecret(%q) = %v, reference says %v", s, got, want)
		}
		if got {
			us := strings.IndexByte(s, '_')
			if !keyward.ValidKeyPrefix(s[:us]) || len(s) > keyward.MaxSecretLen {
				t.Fatalf("ParseSecret(%q) accepted a bad prefix or length", s)
			}
			if start := keyward.SecretStart(s); !strings.HasPrefix(s, start) || len(start) != us+1+keyward.SecretStartLen {
				t.Fatalf("SecretStart(%q) = %q", s, start)
			}
		}
		// Changing the last character of an accepted string must break it.
		if got && len(s) > 0 {
			last := s[len(s)-1]
			repl := byte('0')
			if last == '0' {
				repl = '1'
			}
			if m := s[:len(s)-1] + string(repl); keyward.ParseSecret(m) {
				t.Fatalf("ParseSecret accepts both %q and %q", s, m)
			}
		}
	})
}

// TestFuzzCorpus keeps the committed seeds meaningful: the files named valid_*
// hold secrets ParseSecret accepts, every other one a near miss it refuses.
func TestFuzzCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParseSecret", "*"))
	if err != nil || len(files) < 5 {
		t.Fatalf("seed corpus: %d files, %v", len(files), err)
	}
	valid := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") || !strings.HasSuffix(lines[1], ")") {
			t.Errorf("%s: not a one-string go test fuzz v1 file", f)
			continue
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		want := strings.HasPrefix(filepath.Base(f), "valid_")
		if want {
			valid++
		}
		if got := keyward.ParseSecret(s); got != want {
			t.Errorf("%s: ParseSecret(%q) = %v, want %v", f, s, got, want)
		}
	}
	if valid == 0 {
		t.Error("the seed corpus holds no valid secret")
	}
}

func TestNewID(t *testing.T) {
	base62 := regexp.MustCompile(`^[0-9A-Za-z]{22}$`)
	for _, prefix := range []string{keyward.PrefixTenant, keyward.PrefixUser, keyward.PrefixKey, keyward.PrefixEvent, keyward.PrefixSession} {
		t.Run(prefix, func(t *testing.T) {
			seen := make(map[string]bool, 10000)
			for range 10000 {
				id, err := keyward.NewID(rand.Reader, prefix)
				if err != nil {
					t.Fatalf("NewID: %v", err)
				}
				if !strings.HasPrefix(id, prefix) || !base62.MatchString(id[len(prefix):]) {
					t.Fatalf("NewID(%q) = %q, want the prefix and 22 base62 characters", prefix, id)
				}
				if seen[id] {
					t.Fatalf("NewID(%q) repeated %q", prefix, id)
				}
				seen[id] = true
			}
		})
	}
	if id, err := keyward.NewID(bytes.NewReader(make([]byte, 16)), "key_"); err != nil || id != "key_"+strings.Repeat("0", 22) {
		t.Errorf("NewID(zeros) = %q, %v; want key_ and 22 zeros", id, err)
	}
	if id, err := keyward.NewID(bytes.NewReader(make([]byte, 15)), "key_"); err == nil {
		t.Errorf("NewID with 15 random bytes = %q, want an error", id)
	}
}

func TestHasher(t *testing.T) {
	pepper := bytes.Repeat([]byte("p"), 32)
	for _, n := range []int{0, 1, 16, 31} {
		if _, err := keyward.NewHasher(bytes.Repeat([]byte("p"), n)); err == nil {
			t.Errorf("NewHasher(%d-byte pepper) succeeded, want an error", n)
		}
	}
	if _, err := keyward.NewHasher(nil); err == nil {
		t.Error("NewHasher(nil) succeeded, want an error")
	}
	h, err := keyward.NewHasher(pepper)
	if err != nil {
		t.Fatalf("NewHasher(32 bytes): %v", err)
	}
	h64, err := keyward.NewHasher(bytes.Repeat([]byte("q"), 64))
	if err != nil {
		t.Fatalf("NewHasher(64 bytes): %v", err)
	}
	other, err := keyward.NewHasher(append(bytes.Repeat([]byte("p"), 31), 'x'))
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := mustSecret(t, "kw"), mustSecret(t, "kw")

	d := h.Hash(s1)
	if len(d) != sha256.Size {
		t.Errorf("len(Hash) = %d, want %d", len(d), sha256.Size)
	}
	if !bytes.Equal(d, h.Hash(s1)) {
		t.Error("Hash is not deterministic")
	}
	mac := hmac.New(sha256.New, pepper)
	mac.Write([]byte(s1))
	if want := mac.Sum(nil); !bytes.Equal(d, want) {
		t.Errorf("Hash = %x, want HMAC-SHA-256 %x", d, want)
	}
	if bytes.Equal(d, h.Hash(s2)) {
		t.Error("two secrets hash alike")
	}
	if bytes.Equal(d, other.Hash(s1)) || bytes.Equal(d, h64.Hash(s1)) {
		t.Error("the digest does not depend on the pepper")
	}
	// The hasher keeps its own copy of the pepper.
	mutable := bytes.Repeat([]byte("p"), 32)
	hm, err := keyward.NewHasher(mutable)
	if err != nil {
		t.Fatal(err)
	}
	mutable[0] = 'z'
	if !bytes.Equal(hm.Hash(s1), d) {
		t.Error("changing the caller's pepper slice changed the hasher")
	}
}

func TestEqual(t *testing.T) {
	a := sha256.Sum256([]byte("a"))
	b := sha256.Sum256([]byte("b"))
	a2 := a
	for _, c := range []struct {
		name string
		x, y []byte
		want bool
	}{
		{"same", a[:], a2[:], true},
		{"different", a[:], b[:], false},
		{"last byte differs", a[:], append(append([]byte{}, a[:31]...), a[31]^1), false},
		{"prefix", a[:], a[:31], false},
		{"empty and full", nil, a[:], false},
	} {
		if got := keyward.Equal(c.x, c.y); got != c.want {
			t.Errorf("%s: Equal = %v, want %v", c.name, got, c.want)
		}
	}
}
