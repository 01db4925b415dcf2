// Package auth verifies the bearer tokens of task API requests: the same
// JWTs the edge accepts, checked by the same rules.
//
// The key decides the one accepted algorithm: an HMAC secret (at least 32
// bytes) accepts HS256 only; a PEM public key accepts RS256 (RSA, at least
// 2048 bits), ES256 (ECDSA P-256) or EdDSA (Ed25519) only. "none" and every
// other algorithm are refused, so a token signed with the public key as an
// HMAC secret never verifies. exp is required; iss and aud are checked when
// configured.
//
// Claims used: sub (the user id), permissions ([]string), projects
// ([]string, "*" = every project). The "admin" permission implies every
// permission and every project.
package auth
