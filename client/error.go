package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The contract's stable error codes (the "code" of a problem document).
const (
	CodeInvalidArgument       = "invalid_argument"
	CodeExpirationTooLong     = "expiration_too_long"
	CodeUnauthenticated       = "unauthenticated"
	CodePermissionDenied      = "permission_denied"
	CodeDeveloperRoleRequired = "developer_role_required"
	CodeLicenseRequired       = "license_required"
	CodeAPIKeysDisabled       = "api_keys_disabled"
	CodeNotFound              = "not_found"
	CodeConflict              = "conflict"
	CodeNotRevocable          = "not_revocable"
	CodeKeyLimitReached       = "key_limit_reached"
	CodePayloadTooLarge       = "payload_too_large"
	CodeTooManyRequests       = "too_many_requests"
	CodeInternal              = "internal"
	// CodeUnavailable is the middleware's own: Keyward could not be asked.
	CodeUnavailable = "unavailable"
)

// Error is a refusal from the server: its RFC 9457 problem document, plus
// what the response's headers said. Use errors.As, or IsCode.
type Error struct {
	Status int    // HTTP status
	Code   string // the contract's stable code; "" when the answer was no problem document
	Type   string
	Title  string
	Detail string // for people
	// RetryAfter is the Retry-After of a 429 answer (0 when absent).
	RetryAfter time.Duration
	// RequestID is the server's X-Request-Id, for its logs.
	RequestID string
	// VerifyCode is set on the middleware's refusals: the verification code
	// behind it (NOT_FOUND, REVOKED, FORBIDDEN, …).
	VerifyCode string
}

// Error reads "keyward: 404 not_found: key not found".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("keyward: ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	switch {
	case e.Detail != "":
		b.WriteString(": ")
		b.WriteString(e.Detail)
	case e.Title != "":
		b.WriteString(": ")
		b.WriteString(e.Title)
	}
	return b.String()
}

// Message is the text for people: the detail, else the title, else the status.
func (e *Error) Message() string {
	switch {
	case e.Detail != "":
		return e.Detail
	case e.Title != "":
		return e.Title
	}
	return http.StatusText(e.Status)
}

// decodeError reads a refusal; an answer that is not a problem document
// (a proxy's error page) still becomes an *Error with its status.
func decodeError(resp *http.Response, body []byte) *Error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(0, time.Until(t))
		}
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
		Code   string `json:"code"`
	}
	if json.Unmarshal(body, &p) == nil && p.Code != "" {
		e.Code, e.Type, e.Title, e.Detail = p.Code, p.Type, p.Title, p.Detail
		return e
	}
	e.Title = http.StatusText(resp.StatusCode)
	text := strings.TrimSpace(string(body))
	if len(text) > 200 {
		text = text[:200]
		for !utf8.ValidString(text) {
			text = text[:len(text)-1]
		}
		text += "…"
	}
	e.Detail = text
	return e
}

// IsCode reports whether err is (or wraps) an *Error with this code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// IsNotFound reports a 404 not_found: no such object, or one the caller may not see.
func IsNotFound(err error) bool { return IsCode(err, CodeNotFound) }

// IsUnauthenticated reports a 401: the credential is missing or does not work.
func IsUnauthenticated(err error) bool { return IsCode(err, CodeUnauthenticated) }

// IsPermissionDenied reports a 403 permission_denied.
func IsPermissionDenied(err error) bool { return IsCode(err, CodePermissionDenied) }

// IsConflict reports a 409 of any code: conflict, not_revocable or key_limit_reached.
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}

// StatusCode is the HTTP status of an *Error in err's chain, else 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}
