// Package docs holds the task API's OpenAPI 3 document, docs/openapi.json,
// and embeds it so that the binary serves at /openapi.json the very file
// readers find in the repository. A test in internal/api checks that the
// document describes exactly the routes the API serves.
package docs

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the task API (openapi.json).
//
//go:embed openapi.json
var OpenAPI []byte
