package auth

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eventedge/eventedge/proto/room"
)

// MaxTokenLen is the longest token Verify accepts; longer input is refused
// before any parsing.
const MaxTokenLen = 8 << 10

// Options configures a Verifier. Exactly one of HMACSecret and PublicKeyPEM
// must be set.
type Options struct {
	// HMACSecret accepts HS256 tokens signed with it. At least 32 bytes.
	HMACSecret []byte
	// PublicKeyPEM is an RSA (RS256), ECDSA P-256 (ES256) or Ed25519 (EdDSA)
	// public key in PEM (PKIX "PUBLIC KEY" or "RSA PUBLIC KEY").
	PublicKeyPEM []byte
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be among the token's aud.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat. Default 2s;
	// negative means none.
	Leeway time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// DefaultLeeway is Options.Leeway's default.
const DefaultLeeway = 2 * time.Second

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	key      any
	alg      string
	parser   *jwt.Parser
	leeway   time.Duration
	issuer   string
	audience string
}

// Reason classifies why a token was refused; it is the label of the auth
// failure metric and part of the 4001 close reason.
type Reason string

// Reasons a token is refused.
const (
	ReasonMissing      Reason = "missing"
	ReasonMalformed    Reason = "malformed"
	ReasonTooLong      Reason = "too_long"
	ReasonAlgorithm    Reason = "bad_algorithm"
	ReasonSignature    Reason = "bad_signature"
	ReasonExpired      Reason = "expired"
	ReasonNotYetValid  Reason = "not_yet_valid"
	ReasonMissingExp   Reason = "missing_exp"
	ReasonIssuer       Reason = "wrong_issuer"
	ReasonAudience     Reason = "wrong_audience"
	ReasonClaims       Reason = "bad_claims"
	ReasonSubjectDiffs Reason = "subject_changed"
)

// Error is a refused token. Its message never contains the token.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "token " + string(e.Reason)
	}
	return "token " + string(e.Reason) + ": " + e.Detail
}

// ReasonOf returns err's Reason, or ReasonMalformed when err is not an *Error.
func ReasonOf(err error) Reason {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ReasonMalformed
}

// NewVerifier returns a Verifier for opts, or an error naming what is wrong
// with the key.
func NewVerifier(opts Options) (*Verifier, error) {
	key, alg, err := verificationKey(opts)
	if err != nil {
		return nil, err
	}
	leeway := opts.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{alg}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
		jwt.WithIssuedAt(),
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	if opts.Now != nil {
		popts = append(popts, jwt.WithTimeFunc(opts.Now))
	}
	return &Verifier{key: key, alg: alg, parser: jwt.NewParser(popts...), leeway: leeway, issuer: opts.Issuer, audience: opts.Audience}, nil
}

// Algorithm returns the one signing algorithm v accepts.
func (v *Verifier) Algorithm() string { return v.alg }

// Leeway returns the clock skew v allows.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

func verificationKey(opts Options) (any, string, error) {
	switch {
	case len(opts.HMACSecret) > 0 && len(opts.PublicKeyPEM) > 0:
		return nil, "", errors.New("jwt key: set either an HMAC secret or a public key, not both")
	case len(opts.HMACSecret) > 0:
		if len(opts.HMACSecret) < 32 {
			return nil, "", fmt.Errorf("jwt secret: %d bytes, want at least 32", len(opts.HMACSecret))
		}
		return opts.HMACSecret, jwt.SigningMethodHS256.Alg(), nil
	case len(opts.PublicKeyPEM) > 0:
		return parsePublicKey(opts.PublicKeyPEM)
	}
	return nil, "", errors.New("jwt key: none configured (set a secret or a public key)")
}

func parsePublicKey(pemBytes []byte) (any, string, error) {
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

// tokenClaims is the JSON form of the claims eventedge reads.
type tokenClaims struct {
	jwt.RegisteredClaims
	Permissions []string `json:"permissions,omitempty"`
	Projects    []string `json:"projects,omitempty"`
}

// Verify parses and verifies token and returns its claims. Errors are
// *Error values whose Reason says why the token was refused.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, &Error{Reason: ReasonMissing}
	}
	if len(token) > MaxTokenLen {
		return nil, &Error{Reason: ReasonTooLong, Detail: fmt.Sprintf("%d bytes, at most %d", len(token), MaxTokenLen)}
	}
	var tc tokenClaims
	parsed, err := v.parser.ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		if !errors.Is(err, jwt.ErrTokenMalformed) && parsed != nil && parsed.Method != nil && parsed.Method.Alg() != v.alg {
			return nil, &Error{Reason: ReasonAlgorithm, Detail: "want " + v.alg}
		}
		return nil, v.classify(err, &tc)
	}
	if !room.ValidID(tc.Subject) {
		return nil, &Error{Reason: ReasonClaims, Detail: "sub must be 1-64 characters of A-Z a-z 0-9 _ -"}
	}
	for _, p := range tc.Projects {
		if p != AllProjects && !room.ValidID(p) {
			return nil, &Error{Reason: ReasonClaims, Detail: "projects: invalid project id"}
		}
	}
	c := &Claims{
		Subject:     tc.Subject,
		Permissions: tc.Permissions,
		Projects:    tc.Projects,
		ExpiresAt:   tc.ExpiresAt.Time,
	}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.Time
	}
	return c, nil
}

func (v *Verifier) classify(err error, tc *tokenClaims) error {
	alg := v.alg
	if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		// The library reports every missing required claim alike; say which.
		switch {
		case tc.ExpiresAt == nil:
			return &Error{Reason: ReasonMissingExp, Detail: "exp is required"}
		case v.issuer != "" && tc.Issuer == "":
			return &Error{Reason: ReasonIssuer, Detail: "iss is required"}
		case v.audience != "" && len(tc.Audience) == 0:
			return &Error{Reason: ReasonAudience, Detail: "aud is required"}
		}
		return &Error{Reason: ReasonClaims, Detail: "a required claim is missing"}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return &Error{Reason: ReasonMalformed}
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return &Error{Reason: ReasonAlgorithm, Detail: "want " + alg}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return &Error{Reason: ReasonSignature}
	case errors.Is(err, jwt.ErrTokenExpired):
		return &Error{Reason: ReasonExpired}
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return &Error{Reason: ReasonNotYetValid}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return &Error{Reason: ReasonIssuer}
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return &Error{Reason: ReasonAudience}
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return &Error{Reason: ReasonClaims}
	}
	return &Error{Reason: ReasonMalformed}
}
