// Package server is the dashboard's public HTTP handler: it serves the
// browser app (web/static) with strong ETags, the app's configuration at
// /config.json, and — in development mode only — the login page and the
// development login API that mints demo tokens (/dev/users, /dev/token).
//
// Everything a response carries is computed once in New: the files, their
// ETags and content types, the configuration document and the security
// headers. A Server is then read-only and safe for concurrent use.
//
// Routes:
//
//	GET /              index.html (Cache-Control: no-cache)
//	GET /login         login.html, development mode only
//	GET /<file>        any other file of the app, revalidated every time
//	GET /config.json   {"edgeUrl","clientUrl","apiUrl","dev","loginUrl","version"}, no-store
//	GET /dev/users     the demo users, development mode only
//	POST /dev/token    a demo token for {"user","project"}, development mode only
//
// Anything else is 404, including directories, /index.html and
// /login.html: each page has one URL. HEAD is answered wherever GET is.
package server
