package api

import _ "embed"

// OpenAPIDocument is the contract in OpenAPI 3.1, served at GET /v1/openapi.json.
//
//go:embed openapi.json
var OpenAPIDocument []byte
