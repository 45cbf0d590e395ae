package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// The hand-written verification answer must be byte for byte what
// encoding/json writes for renderVerify, for every code and every kind of
// text a key may hold.
func TestVerifyJSONMatchesEncodingJSON(t *testing.T) {
	exp := time.Date(2027, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	texts := []string{"", "plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\rcr\bbs\fff",
		"\x00\x01\x1f\x7f", "émile 🚀 日本", "bad \xff\xfe utf8", "line\u2028sep\u2029par", "ascii only"}
	var cases []keyward.VerifyResult
	for _, code := range []string{keyward.CodeValid, keyward.CodeNotFound, keyward.CodeRevoked, keyward.CodeForbidden} {
		cases = append(cases, keyward.VerifyResult{Code: code})
	}
	for i, s := range texts {
		k := &keyward.Key{ID: "key_" + s, TenantID: "ten_1", Name: s, OwnerID: "usr_" + s, Type: keyward.KindSystem,
			Role: keyward.KeyRoleAdmin}
		switch i % 4 {
		case 0:
			k.Scopes, k.Meta = nil, nil
		case 1:
			k.Scopes, k.Meta, k.ExpiresAt = []string{s, "b"}, json.RawMessage(`{ "a" : "<x>" , "n": [1, 2.5e3, null, true] }`), &exp
		case 2:
			k.Scopes, k.Meta = []string{}, json.RawMessage(`{}`)
		case 3:
			k.Scopes, k.Meta = []string{"invoices:read"}, json.RawMessage(`{"team":"`+string(mustJSON(t, s))+`"}`)
		}
		cases = append(cases, keyward.VerifyResult{Code: keyward.CodeValid, Key: k}, keyward.VerifyResult{Code: keyward.CodeInactive, Key: k})
	}
	for _, res := range cases {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(renderVerify(res)); err != nil {
			t.Fatal(err)
		}
		if got := appendVerifyJSON(nil, res); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("appendVerifyJSON:\n got %s\nwant %s", got, want.Bytes())
		}
	}
}

func mustJSON(t *testing.T, s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b[1 : len(b)-1]
}

func BenchmarkVerifyJSON(b *testing.B) {
	exp := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	res := keyward.VerifyResult{Code: keyward.CodeValid, Key: &keyward.Key{ID: "key_2D5hTfpN7hZ8205YYQUgYN", TenantID: "ten_bench000000000000000000",
		Name: "billing sync", OwnerID: "usr_0WU76OLIKHr1MxEgNsCWz1", Type: "system", Role: "admin",
		Scopes: []string{"invoices:read"}, Meta: json.RawMessage(`{}`), ExpiresAt: &exp}}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			json.NewEncoder(&buf).Encode(renderVerify(res))
		}
	})
	b.Run("by hand", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendVerifyJSON(buf[:0], res)
		}
	})
}

// plainVerifyBody is a shortcut: whatever it accepts, decodeJSON must accept
// with the same key and nothing else set. The fuzz target looks for a body
// where the two disagree.
func FuzzPlainVerifyBody(f *testing.F) {
	for _, s := range []string{`{"key":"kw_abc"}`, ` {"key":"kw_abc"}` + "\n", `{"key":""}`, `{"key":"kw_a\"b"}`,
		`{"key":"kw_a\u0062"}`, `{"key":"kw_ab","key":"x"}`, `{"key":"a"}{"key":"b"}`, `{"key":"kw_é"}`,
		`{"key": "kw_abc"}`, `{"KEY":"kw_abc"}`, `{"key":"kw_abc","require_role":"admin"}`, `{"key":"kw_abc"} x`,
		`{"key":"kw_abc"}` + "\u00a0", `{"key":"` + strings.Repeat("A", 300) + `"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		key, ok := plainVerifyBody(body)
		if !ok {
			return
		}
		var in verifyRequest
		if err := decodeJSON(body, &in, false); err != nil {
			t.Fatalf("plainVerifyBody took %q (key %q), decodeJSON refuses it: %v", body, key, err)
		}
		if in.Key != key || in.RequireRole != "" || in.RequireScopes != nil {
			t.Fatalf("plainVerifyBody read %q from %q, decodeJSON %+v", key, body, in)
		}
	})
}
