package keyward

import (
	"errors"
	"fmt"
)

// Error codes of the contract. They are stable and machine-readable; transports
// map each to exactly one HTTP status.
const (
	EInvalid            = "invalid_argument"
	EExpirationTooLong  = "expiration_too_long"
	EUnauthenticated    = "unauthenticated"
	EPermissionDenied   = "permission_denied"
	EDeveloperRequired  = "developer_role_required"
	ELicenseRequired    = "license_required"
	EKeysDisabled       = "api_keys_disabled"
	ENotFound           = "not_found"
	EConflict           = "conflict"
	ENotRevocable       = "not_revocable"
	EKeyLimitReached    = "key_limit_reached"
	EPayloadTooLarge    = "payload_too_large"
	ETooManyRequests    = "too_many_requests"
	EInternal           = "internal"
	notRevocableMessage = "Unable to Revoke API Key"
)

// Error is a refusal the caller can act on: a contract code and a message for
// people. Anything that is not an *Error is an internal failure whose details
// must stay in the log.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds a refusal with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode is the contract code of err, EInternal for anything that is not a
// refusal, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage is the people-facing message of err; internal failures get a
// fixed text so that no detail leaks to a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err is a refusal with the given code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }
