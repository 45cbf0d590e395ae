package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward"
)

// The verification answer is written by hand: it is the one response on the
// hot path, and encoding/json's reflection, with its allocations, cost
// about a sixth of a verification over HTTP. The bytes are exactly those of
// json.NewEncoder(w).Encode(renderVerify(res)) (TestVerifyJSONMatchesEncodingJSON).

var verifyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeVerify answers 200 with res, with a Content-Length, in one write.
func writeVerify(w http.ResponseWriter, res keyward.VerifyResult) {
	bp := verifyBufs.Get().(*[]byte)
	b := appendVerifyJSON((*bp)[:0], res)
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		verifyBufs.Put(bp)
	}
}

var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)

// appendVerifyJSON appends renderVerify(res) as encoding/json writes it,
// with its trailing newline.
func appendVerifyJSON(b []byte, res keyward.VerifyResult) []byte {
	b = append(b, `{"valid":`...)
	b = strconv.AppendBool(b, res.Valid())
	b = append(b, `,"code":`...)
	b = appendJSONString(b, res.Code)
	if k := res.Key; k != nil {
		b = append(b, `,"key":{"id":`...)
		b = appendJSONString(b, k.ID)
		b = append(b, `,"tenant_id":`...)
		b = appendJSONString(b, k.TenantID)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, k.Name)
		b = append(b, `,"owner_id":`...)
		b = appendJSONString(b, k.OwnerID)
		b = append(b, `,"type":`...)
		b = appendJSONString(b, k.Type)
		b = append(b, `,"role":`...)
		b = appendJSONString(b, k.Role)
		b = append(b, `,"scopes":[`...)
		for i, s := range k.Scopes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		b = append(b, `],"meta":`...)
		b = appendRawJSON(b, k.Meta)
		b = append(b, `,"expires_at":`...)
		if k.ExpiresAt == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '"')
			b = k.ExpiresAt.UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, "}\n"...)
}

// appendRawJSON appends a stored JSON value as encoding/json writes a
// json.RawMessage: compacted, with <, > and & escaped; empty is {}.
func appendRawJSON(b []byte, raw json.RawMessage) []byte {
	switch {
	case len(raw) == 0:
		return append(b, "{}"...)
	case string(raw) == "{}":
		return append(b, raw...)
	}
	var compact, escaped bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return append(b, "{}"...) // stored meta is validated JSON; never reached
	}
	json.HTMLEscape(&escaped, compact.Bytes())
	return append(b, escaped.Bytes()...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json quotes it (HTML-safe:
// <, > and & escaped; invalid UTF-8 replaced; U+2028 and U+2029 escaped).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
