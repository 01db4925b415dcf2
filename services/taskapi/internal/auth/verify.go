package auth

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eventedge/eventedge/proto/room"
)

// MaxTokenLen is the longest token Verify parses.
const MaxTokenLen = 8 << 10

// DefaultLeeway is Options.Leeway's default.
const DefaultLeeway = 2 * time.Second

// Options configures a Verifier. Exactly one of HMACSecret and PublicKeyPEM
// must be set.
type Options struct {
	// HMACSecret accepts HS256 tokens; at least 32 bytes.
	HMACSecret []byte
	// PublicKeyPEM accepts RS256, ES256 or EdDSA tokens, by the key's type
	// (PKIX "PUBLIC KEY" or "RSA PUBLIC KEY" PEM).
	PublicKeyPEM []byte
	// Issuer, when set, must equal the token's iss. Default: not checked.
	Issuer string
	// Audience, when set, must be among the token's aud. Default: not
	// checked.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat. Default (0) 2s;
	// negative: none.
	Leeway time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// Verifier checks tokens. Safe for concurrent use.
type Verifier struct {
	key    any
	alg    string
	parser *jwt.Parser
}

// ErrToken is wrapped by every error Verify returns. Its messages never
// contain the token.
var ErrToken = errors.New("invalid token")

// NewVerifier returns a Verifier, or an error saying what is wrong with the
// key.
func NewVerifier(o Options) (*Verifier, error) {
	var (
		key any
		alg string
	)
	switch {
	case len(o.HMACSecret) > 0 && len(o.PublicKeyPEM) > 0:
		return nil, errors.New("jwt key: set an HMAC secret or a public key, not both")
	case len(o.HMACSecret) > 0:
		if len(o.HMACSecret) < 32 {
			return nil, fmt.Errorf("jwt secret: %d bytes, want at least 32", len(o.HMACSecret))
		}
		key, alg = o.HMACSecret, jwt.SigningMethodHS256.Alg()
	case len(o.PublicKeyPEM) > 0:
		var err error
		if key, alg, err = publicKey(o.PublicKeyPEM); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("jwt key: none configured (set a secret or a public key)")
	}
	leeway := o.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{alg}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
	}
	if o.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		popts = append(popts, jwt.WithAudience(o.Audience))
	}
	if o.Now != nil {
		popts = append(popts, jwt.WithTimeFunc(o.Now))
	}
	return &Verifier{key: key, alg: alg, parser: jwt.NewParser(popts...)}, nil
}

// Algorithm returns the one algorithm v accepts.
func (v *Verifier) Algorithm() string { return v.alg }

func publicKey(pemBytes []byte) (any, string, error) {
	if k, err := jwt.ParseRSAPublicKeyFromPEM(pemBytes); err == nil {
		if k.N.BitLen() < 2048 {
			return nil, "", fmt.Errorf("jwt public key: RSA key of %d bits, want at least 2048", k.N.BitLen())
		}
		return k, jwt.SigningMethodRS256.Alg(), nil
	}
	if k, err := jwt.ParseECPublicKeyFromPEM(pemBytes); err == nil {
		if k.Curve != elliptic.P256() {
			return nil, "", fmt.Errorf("jwt public key: ECDSA curve %s, want P-256 (ES256)", k.Curve.Params().Name)
		}
		return k, jwt.SigningMethodES256.Alg(), nil
	}
	if k, err := jwt.ParseEdPublicKeyFromPEM(pemBytes); err == nil {
		return k, jwt.SigningMethodEdDSA.Alg(), nil
	}
	return nil, "", errors.New("jwt public key: not a PEM RSA, ECDSA P-256 or Ed25519 public key")
}

type tokenClaims struct {
	jwt.RegisteredClaims
	Permissions []string `json:"permissions,omitempty"`
	Projects    []string `json:"projects,omitempty"`
}

// Verify checks token and returns its claims. Errors wrap ErrToken and say
// why (expired, bad signature, …) without echoing the token.
func (v *Verifier) Verify(token string) (*Claims, error) {
	switch {
	case token == "":
		return nil, fmt.Errorf("%w: missing", ErrToken)
	case len(token) > MaxTokenLen:
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrToken, MaxTokenLen)
	}
	var tc tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return v.key, nil }); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrToken, reason(err))
	}
	if !room.ValidID(tc.Subject) {
		return nil, fmt.Errorf("%w: sub must be 1-64 characters of A-Z a-z 0-9 _ -", ErrToken)
	}
	for _, p := range tc.Projects {
		if p != AllProjects && !room.ValidID(p) {
			return nil, fmt.Errorf("%w: projects: invalid project id", ErrToken)
		}
	}
	return &Claims{Subject: tc.Subject, Permissions: tc.Permissions, Projects: tc.Projects, ExpiresAt: tc.ExpiresAt.Time}, nil
}

// reason is a short, token-free explanation of a parse error.
func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "a required claim (exp, or the configured iss/aud) is missing"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature or algorithm"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	}
	return "invalid claims"
}
