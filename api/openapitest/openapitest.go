// Package openapitest checks real HTTP exchanges against Keyward's OpenAPI
// document (api/openapi.json), so that a server test fails as soon as the
// server and its published contract drift apart: an undocumented route or
// status, a wrong Content-Type, a missing required header, or a body that does
// not match its schema.
//
// It is built on github.com/getkin/kin-openapi. Since v0.13x kin-openapi reads
// OpenAPI 3.1 documents and, for them, validates values with a JSON Schema
// 2020-12 validator (santhosh-tekuri/jsonschema): type arrays with "null",
// const, if/then/else, not, $ref siblings and asserted formats all behave as
// the 3.1 specification says. openapitest_test.go pins each of those by
// experiment (a nullable time given 5, an enum given "bogus", a forbidden
// "secret" member, ...), so a regression in the library shows up there.
// kin-openapi is also the library DESIGN.md names for the job, and it leaves
// the document as plain Go values the tests can walk.
//
// Requests are not validated: the server's tests send malformed requests on
// purpose. Only the route (method and path) must be in the document.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Validator holds a loaded, validated OpenAPI document and its router. It is
// safe for concurrent use, so one Validator may serve parallel tests.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// New loads doc (OpenAPI JSON or YAML), validates it as an OpenAPI document and
// prepares routing; any failure is fatal to tb.
func New(tb testing.TB, doc []byte) *Validator {
	tb.Helper()
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromData(doc)
	if err != nil {
		tb.Fatalf("openapitest: load OpenAPI document: %v", err)
		return nil
	}
	if err := t.Validate(loader.Context); err != nil {
		tb.Fatalf("openapitest: invalid OpenAPI document: %v", err)
		return nil
	}
	router, err := gorillamux.NewRouter(t)
	if err != nil {
		tb.Fatalf("openapitest: route OpenAPI document: %v", err)
		return nil
	}
	return &Validator{doc: t, router: router}
}

// Document is the loaded document, for tests that want to inspect it.
func (v *Validator) Document() *openapi3.T { return v.doc }

// Transport wraps base (http.DefaultTransport when nil) so that every response
// that comes through it is checked as Check does; violations are reported with
// tb.Errorf and do not stop the test. The response body is read in full and put
// back, so the caller reads it as usual.
func (v *Validator) Transport(tb testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{v: v, tb: tb, base: base}
}

type transport struct {
	v    *Validator
	tb   testing.TB
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("openapitest: read response body of %s %s: %w", req.Method, req.URL.Path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	t.v.Check(t.tb, req, resp, body)
	return resp, nil
}

// Check validates one exchange already made, for instance through an
// httptest.ResponseRecorder (use rec.Result() and rec.Body.Bytes()): the route
// must be in the document, the status declared for its operation (or a
// default declared), declared response headers present and well-formed, and
// the Content-Type and body those of the declared content; a response that
// declares no content must have an empty body. resp.Body is not read: body is
// what was received. Violations are reported with tb.Errorf.
func (v *Validator) Check(tb testing.TB, req *http.Request, resp *http.Response, body []byte) {
	tb.Helper()
	if err := v.check(req, resp, body); err != nil {
		tb.Errorf("openapitest: %s %s → %d: %v%s", req.Method, req.URL.Path, resp.StatusCode, err, excerpt(resp, body))
	}
}

func (v *Validator) check(req *http.Request, resp *http.Response, body []byte) error {
	route, pathParams, err := v.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		return fmt.Errorf("route not in the OpenAPI document: no path matches %q", req.URL.Path)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return fmt.Errorf("route not in the OpenAPI document: the path has no %s operation", req.Method)
	case err != nil:
		return fmt.Errorf("route not in the OpenAPI document: %v", err)
	}
	op := route.Operation

	response := op.Responses.Status(resp.StatusCode)
	if response == nil {
		response = op.Responses.Default()
	}
	if response == nil {
		return fmt.Errorf("status %d is not declared for operation %s (declared: %s)",
			resp.StatusCode, op.OperationID, strings.Join(declared(op), ", "))
	}
	if response.Value == nil {
		return fmt.Errorf("response %d of operation %s is not resolved", resp.StatusCode, op.OperationID)
	}
	if len(response.Value.Content) == 0 && len(body) > 0 {
		return fmt.Errorf("operation %s declares no body for status %d, got %d bytes", op.OperationID, resp.StatusCode, len(body))
	}

	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: pathParams,
			Route:      route,
		},
		Status: resp.StatusCode,
		Header: resp.Header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	input.Options.WithCustomSchemaErrorFunc(schemaErrorMessage)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return fmt.Errorf("operation %s: %w", op.OperationID, err)
	}
	return nil
}

// schemaErrorMessage says where a value fails and why, leaving out kin-openapi's
// dump of the whole schema, which for a Key runs to a hundred lines.
// Errors that group others (Origin set) keep kin-openapi's wording, which
// formats each of the grouped errors through this function again.
func schemaErrorMessage(err *openapi3.SchemaError) string {
	if err.Origin != nil {
		return ""
	}
	value, jerr := json.Marshal(err.Value)
	if jerr != nil {
		value = fmt.Appendf(nil, "%v", err.Value)
	}
	if len(value) > 200 {
		value = append(value[:200], "…"...)
	}
	reason := err.Reason
	if !strings.HasPrefix(reason, "error at ") { // the JSON Schema 2020-12 validator names the place itself
		reason = fmt.Sprintf("error at %q: %s", "/"+strings.Join(err.JSONPointer(), "/"), reason)
	}
	if err.SchemaField == "required" {
		return reason
	}
	return fmt.Sprintf("%s (value: %s)", reason, value)
}

// declared lists the statuses an operation declares, in order.
func declared(op *openapi3.Operation) []string {
	var out []string
	for status := range op.Responses.Map() {
		out = append(out, status)
	}
	slices.SortFunc(out, func(a, b string) int {
		ai, aerr := strconv.Atoi(a)
		bi, berr := strconv.Atoi(b)
		if aerr == nil && berr == nil {
			return ai - bi
		}
		return strings.Compare(a, b)
	})
	return out
}

// excerpt shows what was received, cut short, to make a failure readable.
func excerpt(resp *http.Response, body []byte) string {
	const max = 2048
	ct := resp.Header.Get("Content-Type")
	if len(body) == 0 {
		return fmt.Sprintf("\n\tContent-Type: %q, empty body", ct)
	}
	b := string(body)
	if len(b) > max {
		b = b[:max] + "…"
	}
	return fmt.Sprintf("\n\tContent-Type: %q, body: %s", ct, b)
}
