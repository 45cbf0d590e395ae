package keyward_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward"
)

func TestCursorRoundTrip(t *testing.T) {
	fp := keyward.Fingerprint("keys", "ten_1", "", "q")
	for _, c := range []keyward.Cursor{
		{ID: "key_1", Filter: fp},
		{Sort: "name", Value: "Ünïcødé / name, with \"quotes\"", ID: "key_2", Filter: fp},
		{Sort: "created_at", Desc: true, Value: "1795428000000000", ID: "key_3", Filter: fp},
		{Sort: "expires_at", Null: true, ID: "key_4", Filter: fp},
		{Sort: "last_used_at", Desc: true, Value: "-9223372036854775807", Null: true, ID: "key_5", Filter: fp},
	} {
		token := keyward.EncodeCursor(c)
		if strings.ContainsAny(token, "+/= \n") {
			t.Errorf("EncodeCursor(%+v) = %q: not URL-safe", c, token)
		}
		got, err := keyward.DecodeCursor(token, fp)
		if err != nil {
			t.Errorf("DecodeCursor(EncodeCursor(%+v)): %v", c, err)
			continue
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("cursor round trip (-want +got):\n%s", diff)
		}
	}
}

func TestDecodeCursorRefusals(t *testing.T) {
	fp := keyward.Fingerprint("keys", "ten_1")
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	valid := keyward.EncodeCursor(keyward.Cursor{Sort: "name", Value: "a", ID: "key_1", Filter: fp})
	for _, c := range []struct{ name, token, fp string }{
		{"empty", "", fp},
		{"not base64", "!!!not base64!!!", fp},
		{"padded base64", valid + "=", fp},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(valid) + "+/", fp},
		{"not JSON", enc("not json"), fp},
		{"JSON array", enc(`["key_1"]`), fp},
		{"JSON null", enc(`null`), fp},
		{"no id", enc(`{"s":"name","v":"a","f":"` + fp + `"}`), fp},
		{"empty id", enc(`{"i":"","f":"` + fp + `"}`), fp},
		{"wrong types", enc(`{"i":1,"f":"` + fp + `"}`), fp},
		{"truncated", valid[:len(valid)/2], fp},
		{"huge", enc(`{"i":"key_1","f":"` + fp + `","v":"` + strings.Repeat("a", 5000) + `"}`), fp},
		{"wrong fingerprint", valid, keyward.Fingerprint("keys", "ten_2")},
		{"no fingerprint in token", enc(`{"i":"key_1"}`), fp},
		{"fingerprint of another query", valid, ""},
	} {
		_, err := keyward.DecodeCursor(c.token, c.fp)
		if got := keyward.ErrorCode(err); got != keyward.EInvalid {
			t.Errorf("%s: DecodeCursor(%q) error %v (code %q), want %s", c.name, c.token, err, got, keyward.EInvalid)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a := keyward.Fingerprint("keys", "ten_1", "q")
	if a != keyward.Fingerprint("keys", "ten_1", "q") {
		t.Error("Fingerprint is not deterministic")
	}
	if len(a) != 16 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Errorf("Fingerprint = %q, want 16 hex characters", a)
	}
	for _, other := range [][]string{
		{"keys", "ten_2", "q"},
		{"keys", "ten_1", "Q"},
		{"keys", "ten_1", "q", ""},
		{"keys", "ten_1q"},
		{"keysten_1", "q"},
		{"users", "ten_1", "q"},
	} {
		if keyward.Fingerprint(other...) == a {
			t.Errorf("Fingerprint(%q) equals Fingerprint(keys, ten_1, q)", other)
		}
	}
}
