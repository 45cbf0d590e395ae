package keyward_test

import (
	"crypto/rand"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward"
)

// cheap are argon2id costs that keep tests fast; production uses DefaultPasswordParams.
var cheap = keyward.PasswordParams{Memory: 64, Time: 1, Threads: 1}

func mustHashPassword(tb testing.TB, pw string) string {
	tb.Helper()
	h, err := keyward.HashPassword(rand.Reader, cheap, pw)
	if err != nil {
		tb.Fatalf("HashPassword: %v", err)
	}
	return h
}

func TestHashPasswordFormat(t *testing.T) {
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	h1 := mustHashPassword(t, "correct horse battery")
	h2 := mustHashPassword(t, "correct horse battery")
	for _, h := range []string{h1, h2} {
		if !phc.MatchString(h) {
			t.Errorf("HashPassword = %q, want a PHC argon2id string with the given costs", h)
		}
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	if strings.Contains(h1, "correct horse") {
		t.Error("the hash holds the password")
	}
	if _, err := keyward.HashPassword(strings.NewReader("short"), cheap, "x"); err == nil {
		t.Error("HashPassword with a failing random source succeeded")
	}
}

func TestCheckPassword(t *testing.T) {
	long := strings.Repeat("p", 1025)
	for _, c := range []struct {
		name, password, try string
		want                bool
	}{
		{"right", "correct horse battery", "correct horse battery", true},
		{"wrong", "correct horse battery", "correct horse battery!", false},
		{"case", "correct horse battery", "Correct horse battery", false},
		{"empty try", "correct horse battery", "", false},
		{"prefix", "correct horse battery", "correct horse", false},
		{"unicode right", "pässwörd-日本語-🔑", "pässwörd-日本語-🔑", true},
		{"unicode normalisation differs", "caf\u00e9-password", "cafe\u0301-password", false},
		{"at the length limit", strings.Repeat("p", 1024), strings.Repeat("p", 1024), true},
		{"beyond the length limit", long, long, false},
	} {
		h := mustHashPassword(t, c.password)
		if got := keyward.CheckPassword(h, c.try); got != c.want {
			t.Errorf("%s: CheckPassword = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	const pw = "correct horse battery"
	good := mustHashPassword(t, pw)
	if !keyward.CheckPassword(good, pw) {
		t.Fatal("CheckPassword refuses a good hash")
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=..,t=..,p=.., salt, hash
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	otherSalt := strings.Split(mustHashPassword(t, pw), "$")[4]
	flip := func(s string) string {
		c := byte('A')
		if s[0] == 'A' {
			c = 'B'
		}
		return string(c) + s[1:]
	}
	for _, c := range []struct{ name, phc string }{
		{"empty", ""},
		{"plain text", pw},
		{"dollars only", "$$$$$"},
		{"missing hash", strings.Join(parts[:5], "$")},
		{"extra field", good + "$AAAA"},
		{"argon2i", with(1, "argon2i")},
		{"bcrypt", with(1, "2b")},
		{"upper-case algorithm", with(1, "ARGON2ID")},
		{"version 16", with(2, "v=16")},
		{"version garbage", with(2, "v=x")},
		{"no version", with(2, "")},
		{"params garbage", with(3, "m=x,t=1,p=1")},
		{"params missing", with(3, "m=64,t=1")},
		{"params empty", with(3, "")},
		{"zero time", with(3, "m=64,t=0,p=1")},
		{"zero threads", with(3, "m=64,t=1,p=0")},
		{"negative memory", with(3, "m=-1,t=1,p=1")},
		{"too much memory", with(3, "m=2097152,t=1,p=1")},
		{"too many passes", with(3, "m=64,t=17,p=1")},
		{"threads overflow", with(3, "m=64,t=1,p=256")},
		{"other costs", with(3, "m=128,t=1,p=1")},
		{"salt not base64", with(4, "!!!!")},
		{"other salt", with(4, otherSalt)},
		{"empty hash", with(5, "")},
		{"hash not base64", with(5, "****")},
		{"hash one char changed", with(5, flip(parts[5]))},
		{"hash truncated", with(5, parts[5][:40])},
		{"hash padded", with(5, parts[5]+"=")},
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: CheckPassword(%q) panics: %v", c.name, c.phc, r)
				}
			}()
			if keyward.CheckPassword(c.phc, pw) {
				t.Errorf("%s: CheckPassword(%q) = true, want false", c.name, c.phc)
			}
		}()
	}
}
