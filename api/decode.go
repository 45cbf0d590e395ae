package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// MaxBodyBytes is the contract's largest request body.
const MaxBodyBytes = 1 << 20

// errTooLarge is the contract's answer to a body over MaxBodyBytes.
func errTooLarge() error {
	return keyward.Errorf(keyward.EPayloadTooLarge, "request body is over %d bytes", MaxBodyBytes)
}

// limitBody bounds the request body before any handler runs, so that a body
// over MaxBodyBytes is refused on every route, not only where a handler
// reads it. A declared Content-Length over the limit is refused at once;
// a known length within it gets a MaxBytesReader (which readBody then reads,
// so a body-reading route costs no more than before). A body of unknown
// length (chunked; or a length of 0 with a body, which the server never
// makes but a caller of ServeHTTP may) is read here, up to one byte over
// the limit, so that a route that never reads its body cannot act on a
// request that is too large.
func limitBody(w http.ResponseWriter, r *http.Request) error {
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		return nil
	case r.ContentLength > MaxBodyBytes:
		return errTooLarge()
	case r.ContentLength > 0:
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return keyward.Errorf(keyward.EInvalid, "could not read the request body")
	}
	if len(body) > MaxBodyBytes {
		return errTooLarge()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// readBody reads the request body, which limitBody has bounded: every route
// of the table runs behind it.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyReadError(err)
	}
	return body, nil
}

// bodyReadError is the refusal for a body that could not be read.
func bodyReadError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errTooLarge()
	}
	return keyward.Errorf(keyward.EInvalid, "could not read the request body")
}

// jsonSpace is JSON's whitespace (RFC 8259, section 2).
const jsonSpace = " \t\r\n"

// decodeJSON reads one JSON object into v, refusing unknown fields, wrong
// types and trailing data with a message that names the problem.
func decodeJSON(body []byte, v any, allowEmpty bool) error {
	trimmed := bytes.Trim(body, jsonSpace) // not bytes.TrimSpace: U+00A0 is no JSON whitespace
	if len(trimmed) == 0 {
		if allowEmpty {
			return nil
		}
		return keyward.Errorf(keyward.EInvalid, "a JSON object body is required")
	}
	// encoding/json decodes a top-level null into a struct as "nothing set",
	// which would let `null` pass for an empty object.
	if trimmed[0] != '{' {
		return keyward.Errorf(keyward.EInvalid, "the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return keyward.Errorf(keyward.EInvalid, "malformed JSON: data after the object")
	}
	return nil
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var ee *fieldError
	switch {
	case errors.As(err, &se):
		return keyward.Errorf(keyward.EInvalid, "malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" && te.Value == "null" {
			return keyward.Errorf(keyward.EInvalid, "field %s must not be null (leave it out to keep its value)", te.Field)
		}
		if te.Field != "" {
			return keyward.Errorf(keyward.EInvalid, "field %s must be %s", te.Field, jsonKind(te.Type.String()))
		}
		return keyward.Errorf(keyward.EInvalid, "the body must be a JSON object")
	case errors.As(err, &ee):
		return keyward.Errorf(keyward.EInvalid, "%s", ee.msg)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return keyward.Errorf(keyward.EInvalid, "malformed JSON: unexpected end")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return keyward.Errorf(keyward.EInvalid, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return keyward.Errorf(keyward.EInvalid, "malformed JSON")
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map"), strings.HasPrefix(goType, "struct"), strings.Contains(goType, "."):
		return "an object"
	case goType == "string", goType == "*string":
		return "a string"
	case goType == "bool", goType == "*bool":
		return "true or false"
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "a number"
	}
	return "of another type"
}

type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }

// timeField is an RFC 3339 time in a request body.
type timeField struct{ t time.Time }

func (f *timeField) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &fieldError{"times must be RFC 3339 strings such as 2026-11-22T10:00:00Z"}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return &fieldError{fmt.Sprintf("%q is not an RFC 3339 time such as 2026-11-22T10:00:00Z", s)}
	}
	f.t = t
	return nil
}

// MarshalJSON writes the time back as it was read (with its offset).
func (f timeField) MarshalJSON() ([]byte, error) { return json.Marshal(f.t.Format(time.RFC3339Nano)) }

// optional is a field that may be absent but not null. encoding/json
// decodes null into a nil pointer, the same as an absent field, which would
// let {"name": null} answer 200 having changed nothing; here null is an
// UnmarshalTypeError, which the decoder gives the field's name.
type optional[T any] struct {
	Value *T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return &json.UnmarshalTypeError{Value: "null", Type: reflect.TypeFor[T]()}
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
}

// IsZero and MarshalJSON let a decoded request encode back to what it was
// decoded from (tagged omitzero: absent stays absent).
func (o optional[T]) IsZero() bool { return o.Value == nil }

func (o optional[T]) MarshalJSON() ([]byte, error) { return json.Marshal(o.Value) }

// nullableInt remembers whether a field was absent, null or a number.
type nullableInt struct {
	keyward.OptionalInt
}

func (n *nullableInt) UnmarshalJSON(b []byte) error {
	n.Set, n.Value = true, nil // the last of duplicate members wins, as everywhere in encoding/json
	if string(b) == "null" {
		return nil
	}
	var v int
	if err := json.Unmarshal(b, &v); err != nil {
		return &fieldError{"max_expiration_days must be null or a whole number"}
	}
	n.Value = &v
	return nil
}

func (n nullableInt) IsZero() bool { return !n.Set }

func (n nullableInt) MarshalJSON() ([]byte, error) { return json.Marshal(n.Value) }

// nullableRateLimit remembers whether rate_limit was absent, null or a limit.
type nullableRateLimit struct {
	keyward.OptionalRateLimit
}

func (n *nullableRateLimit) UnmarshalJSON(b []byte) error {
	n.Set, n.Value = true, nil // the last of duplicate members wins, as everywhere in encoding/json
	if string(b) == "null" {
		return nil
	}
	var v keyward.RateLimit
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return &fieldError{"rate_limit must be null or an object {\"limit\", \"window_seconds\"}"}
	}
	n.Value = &v
	return nil
}

func (n nullableRateLimit) IsZero() bool { return !n.Set }

func (n nullableRateLimit) MarshalJSON() ([]byte, error) { return json.Marshal(n.Value) }

// query reads a URL query parameter with a bounded length.
func queryInt(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, keyward.Errorf(keyward.EInvalid, "%s must be a whole number from 1", name)
	}
	return n, nil
}

func queryTime(r *http.Request, name string) (*time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, keyward.Errorf(keyward.EInvalid, "%s must be an RFC 3339 time such as 2026-11-22T10:00:00Z", name)
	}
	t = t.UTC()
	return &t, nil
}
