package api

import (
	"bytes"
	"net/http/httptest"
)

// requestBodies are the JSON request bodies of the route table, each with a
// fresh value of the type its handler decodes into and whether the handler
// takes an empty body.
var requestBodies = map[string]struct {
	new        func() any
	allowEmpty bool
}{
	"POST /v1/sessions":         {func() any { return new(loginRequest) }, false},
	"POST /v1/users":            {func() any { return new(userCreateRequest) }, false},
	"PATCH /v1/users/{id}":      {func() any { return new(userPatchRequest) }, false},
	"POST /v1/keys":             {func() any { return new(keyCreateRequest) }, false},
	"POST /v1/keys/verify":      {func() any { return new(verifyRequest) }, false},
	"POST /v1/keys/revoke":      {func() any { return new(bulkRevokeRequest) }, false},
	"PATCH /v1/keys/{id}":       {func() any { return new(keyPatchRequest) }, false},
	"POST /v1/keys/{id}/revoke": {func() any { return new(revokeRequest) }, true},
	"POST /v1/keys/{id}/rotate": {func() any { return new(rotateRequest) }, true},
	"PATCH /v1/settings":        {func() any { return new(settingsPatchRequest) }, false},
}

// DecodeRequest reads body as the handler of route ("PATCH /v1/settings")
// does, through the same size limit and decoder, and returns the decoded
// request value (a pointer to the handler's request type, which encodes back
// with json.Marshal: absent fields left out, null where null was given).
func DecodeRequest(route string, body []byte) (any, error) {
	rb, ok := requestBodies[route]
	if !ok {
		panic("no JSON request body on route " + route)
	}
	// A reader of unknown length, as a chunked request has, would skip the
	// Content-Length check; bytes.Reader gives the request its length.
	r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	if err := limitBody(httptest.NewRecorder(), r); err != nil {
		return nil, err
	}
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	v := rb.new()
	return v, decodeJSON(b, v, rb.allowEmpty)
}
