package keyward

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// Cursor is what an opaque page token carries: where the previous page ended
// in its sort order, and a fingerprint of the filter it belongs to, so that a
// token cannot be replayed against another query. Stores share this encoding.
type Cursor struct {
	Sort   string `json:"s,omitempty"`
	Desc   bool   `json:"d,omitempty"`
	Value  string `json:"v,omitempty"`
	Null   bool   `json:"n,omitempty"` // the sort value of the last row was NULL
	ID     string `json:"i"`
	Filter string `json:"f"`
}

// EncodeCursor makes an opaque page token.
func EncodeCursor(c Cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a page token made by EncodeCursor for a query with the
// given filter fingerprint; anything else is EInvalid.
func DecodeCursor(token, fingerprint string) (Cursor, error) {
	var c Cursor
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) > 4096 {
		return c, Errorf(EInvalid, "invalid page_token")
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		return c, Errorf(EInvalid, "invalid page_token")
	}
	if c.Filter != fingerprint {
		return c, Errorf(EInvalid, "page_token belongs to another query")
	}
	return c, nil
}

// Fingerprint summarizes the parts of a query a page token is bound to.
func Fingerprint(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:8])
}
