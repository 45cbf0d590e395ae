package api

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/keyward/keyward"
)

// statusOf is the one table from contract codes to HTTP statuses.
var statusOf = map[string]int{
	keyward.EInvalid:           http.StatusBadRequest,
	keyward.EExpirationTooLong: http.StatusBadRequest,
	keyward.EUnauthenticated:   http.StatusUnauthorized,
	keyward.EPermissionDenied:  http.StatusForbidden,
	keyward.EDeveloperRequired: http.StatusForbidden,
	keyward.ELicenseRequired:   http.StatusForbidden,
	keyward.EKeysDisabled:      http.StatusForbidden,
	keyward.ENotFound:          http.StatusNotFound,
	keyward.EConflict:          http.StatusConflict,
	keyward.ENotRevocable:      http.StatusConflict,
	keyward.EKeyLimitReached:   http.StatusConflict,
	keyward.EPayloadTooLarge:   http.StatusRequestEntityTooLarge,
	keyward.ETooManyRequests:   http.StatusTooManyRequests,
	keyward.EInternal:          http.StatusInternalServerError,
}

// titleOf gives each code a short, stable title.
var titleOf = map[string]string{
	keyward.EInvalid:           "Invalid argument",
	keyward.EExpirationTooLong: "Expiration too long",
	keyward.EUnauthenticated:   "Unauthenticated",
	keyward.EPermissionDenied:  "Permission denied",
	keyward.EDeveloperRequired: "Developer role required",
	keyward.ELicenseRequired:   "License required",
	keyward.EKeysDisabled:      "API keys disabled",
	keyward.ENotFound:          "Not found",
	keyward.EConflict:          "Conflict",
	keyward.ENotRevocable:      "Unable to Revoke API Key",
	keyward.EKeyLimitReached:   "Key limit reached",
	keyward.EPayloadTooLarge:   "Payload too large",
	keyward.ETooManyRequests:   "Too many requests",
	keyward.EInternal:          "Internal error",
}

// Problem is an RFC 9457 problem document with the contract's stable code.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	// Valid is set on verification answers, so that a client reading
	// "valid" sees false on a throttled verification too.
	Valid *bool `json:"valid,omitempty"`
}

// problemFor turns any error into the problem document a client may see:
// internal errors are logged with the request ID and answered without details.
func problemFor(r *http.Request, log *slog.Logger, err error) Problem {
	code := keyward.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		code, status = keyward.EInternal, http.StatusInternalServerError
	}
	detail := keyward.ErrorMessage(err)
	if code == keyward.EInternal {
		log.ErrorContext(r.Context(), "internal error", "err", err, "method", r.Method, "path", r.URL.Path,
			"request_id", requestID(r.Context()))
		detail = "internal error (request " + requestID(r.Context()) + ")"
	}
	return Problem{Type: "https://keyward.dev/problems/" + code, Title: titleOf[code], Status: status, Detail: detail, Code: code}
}

func writeProblem(w http.ResponseWriter, p Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if p.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="keyward"`)
	}
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, problemFor(r, s.log, err))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
