package load

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// minter signs HS256 tokens with the claims `edge token` writes: sub, iat,
// exp, permissions, projects. Safe for concurrent use (static after
// construction).
type minter struct {
	secret []byte
	ttl    time.Duration
}

// tokenFor returns a token for user sub with these permissions and
// projects.
func (m *minter) tokenFor(sub string, permissions, projects []string) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{
		"sub":         sub,
		"iat":         now.Unix(),
		"exp":         now.Add(m.ttl).Unix(),
		"permissions": permissions,
		"projects":    projects,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(m.secret)
	if err != nil {
		return "", fmt.Errorf("sign token for %s: %w", sub, err)
	}
	return tok, nil
}
