// Package openapitest checks real HTTP exchanges against Keyward's OpenAPI
// document (api/openapi.json), so that a server test fails as soon as the
// server and its published contract drift apart: an undocumented route or
// status, a wrong Content-Type, a missing required header, or a body that does
// not match its schema.
//
// It is built on github.com/getkin/kin-openapi (v0.152), the library
// DESIGN.md names for the job. kin-openapi reads OpenAPI 3.1 documents and, for
// them, validates with a JSON Schema 2020-12 validator
// (santhosh-tekuri/jsonschema) whenever a schema uses a 2020-12 keyword (const,
// if/then/else, ...); other schemas go through its own validator, which also
// understands 3.1 type arrays with "null". openapitest_test.go pins what the
// contract relies on, on both paths, by experiment: a nullable time given 5,
// an enum given "bogus", a "secret" member a Key must not have, a verification
// answer whose valid and code disagree, a Problem whose code belongs to
// another status. So pb33f/libopenapi-validator, the alternative, was not
// needed; kin-openapi also leaves the document as plain Go values the tests
// walk (routes, operationIds, security, request schemas).
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
	"github.com/santhosh-tekuri/jsonschema/v6"
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

	// kin-openapi skips HEAD responses altogether; check their headers as for
	// the GET they mirror (a HEAD response has no body to check).
	vreq := req
	if req.Method == http.MethodHead {
		vreq = req.Clone(req.Context())
		vreq.Method = http.MethodGet
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    vreq,
			PathParams: pathParams,
			Route:      route,
		},
		Status: resp.StatusCode,
		Header: resp.Header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			ExcludeResponseBody:   req.Method == http.MethodHead,
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return fmt.Errorf("operation %s: %s", op.OperationID, describe(err))
	}
	return nil
}

// describe spells out a validation error: kin-openapi nests schema errors
// (allOf inside $ref inside a list item...) and dumps each failing schema whole,
// which for a Key runs to a hundred lines. This lists the failing leaves, each
// with where the value is, once.
func describe(err error) string {
	var re *openapi3filter.ResponseError
	if !errors.As(err, &re) || re.Err == nil {
		return err.Error()
	}
	var leaves []string
	var walk func(error)
	walk = func(err error) {
		var se *openapi3.SchemaError
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, err := range e {
				walk(err)
			}
			return
		case *openapi3.SchemaError:
			se = e
		}
		if se != nil && se.Origin == nil {
			leaves = append(leaves, leaf(se))
			return
		}
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, err := range e.Unwrap() {
				walk(err)
			}
		case interface{ Unwrap() error }:
			if next := e.Unwrap(); next != nil {
				walk(next)
				return
			}
			leaves = append(leaves, err.Error())
		default:
			leaves = append(leaves, err.Error())
		}
	}
	walk(re.Err)
	slices.Sort(leaves)
	leaves = slices.Compact(leaves)
	return re.Reason + ":\n\t- " + strings.Join(leaves, "\n\t- ")
}

// leaf describes one failing value.
func leaf(se *openapi3.SchemaError) string {
	// From the JSON Schema 2020-12 validator (OpenAPI 3.1 schemas that use
	// 2020-12 keywords): its own message says where, as "at '/pointer': ...".
	// The schema location, after the message, tells which rule failed.
	if verr, ok := se.Unwrap().(*jsonschema.ValidationError); ok && len(verr.Causes) == 0 {
		_, loc, _ := strings.Cut(verr.SchemaURL, "#")
		for _, k := range verr.ErrorKind.KeywordPath() {
			loc += "/" + k
		}
		return fmt.Sprintf("%s [schema #%s]", verr.Error(), loc)
	}
	reason := se.Reason
	switch {
	case se.SchemaField == "not" && se.Schema != nil && se.Schema.Not != nil:
		not, _ := json.Marshal(se.Schema.Not.Value)
		reason = fmt.Sprintf("must not match %s", not)
	case reason == "":
		reason = fmt.Sprintf("fails %q", se.SchemaField)
	}
	msg := fmt.Sprintf("at '/%s': %s", strings.Join(se.JSONPointer(), "/"), reason)
	if se.SchemaField == "required" {
		return msg
	}
	value, err := json.Marshal(se.Value)
	if err != nil {
		value = fmt.Appendf(nil, "%v", se.Value)
	}
	if len(value) > 200 {
		value = append(value[:200], "…"...)
	}
	return fmt.Sprintf("%s (value: %s)", msg, value)
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
