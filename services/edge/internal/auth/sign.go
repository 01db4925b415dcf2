package auth

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Signer mints tokens, for `edge token`, local development and tests. It is
// safe for concurrent use.
type Signer struct {
	key    any
	method jwt.SigningMethod
}

// NewHMACSigner returns a Signer for HS256 with secret (at least 32 bytes).
func NewHMACSigner(secret []byte) (*Signer, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("jwt secret: %d bytes, want at least 32", len(secret))
	}
	return &Signer{key: secret, method: jwt.SigningMethodHS256}, nil
}

// NewKeySigner returns a Signer for a PEM private key: RSA (RS256), ECDSA
// P-256 (ES256) or Ed25519 (EdDSA).
func NewKeySigner(privatePEM []byte) (*Signer, error) {
	if k, err := jwt.ParseRSAPrivateKeyFromPEM(privatePEM); err == nil {
		return &Signer{key: k, method: jwt.SigningMethodRS256}, nil
	}
	if k, err := jwt.ParseECPrivateKeyFromPEM(privatePEM); err == nil {
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("jwt private key: ECDSA curve %s, want P-256 (ES256)", k.Curve.Params().Name)
		}
		return &Signer{key: k, method: jwt.SigningMethodES256}, nil
	}
	if k, err := jwt.ParseEdPrivateKeyFromPEM(privatePEM); err == nil {
		return &Signer{key: k, method: jwt.SigningMethodEdDSA}, nil
	}
	return nil, errors.New("jwt private key: not a PEM RSA, ECDSA P-256 or Ed25519 private key")
}

// TokenSpec describes a token to mint.
type TokenSpec struct {
	Subject     string
	Permissions []string
	Projects    []string
	// TTL is the lifetime from now. Default 1h.
	TTL      time.Duration
	Issuer   string
	Audience string
	// Now is the issue time. Default time.Now().
	Now time.Time
}

// Sign returns a signed token for spec.
func (s *Signer) Sign(spec TokenSpec) (string, error) {
	if spec.TTL == 0 {
		spec.TTL = time.Hour
	}
	if spec.Now.IsZero() {
		spec.Now = time.Now()
	}
	c := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   spec.Subject,
			Issuer:    spec.Issuer,
			IssuedAt:  jwt.NewNumericDate(spec.Now),
			ExpiresAt: jwt.NewNumericDate(spec.Now.Add(spec.TTL)),
		},
		Permissions: spec.Permissions,
		Projects:    spec.Projects,
	}
	if spec.Audience != "" {
		c.Audience = jwt.ClaimStrings{spec.Audience}
	}
	tok, err := jwt.NewWithClaims(s.method, c).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}
