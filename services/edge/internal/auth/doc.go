// Package auth verifies the JWTs clients present and decides which rooms and
// events their claims allow.
//
// The accepted signing algorithm follows from the configured key alone: an
// HMAC secret accepts HS256 only; an RSA public key RS256 only; an ECDSA
// P-256 key ES256 only; an Ed25519 key EdDSA only. "none" and every other
// algorithm are refused, so a token signed with the public key as an HMAC
// secret (the HS/RS confusion attack) never verifies.
//
// Claims used: sub (the user id), exp (required), permissions ([]string) and
// projects ([]string, "*" meaning every project); iss and aud are checked
// when configured. The "admin" permission implies every other permission and
// every project.
package auth
