package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const secret = "auth-test-secret-0123456789abcdef-0123"

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims returns valid claims for u1 with every map of overrides applied
// (a nil value removes the claim).
func claims(overrides ...map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix(), "permissions": []string{"tasks:read"}, "projects": []string{"p1"}}
	for _, o := range overrides {
		for k, v := range o {
			if v == nil {
				delete(c, k)
				continue
			}
			c[k] = v
		}
	}
	return c
}

func pemOf(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifyHMAC(t *testing.T) {
	v, err := NewVerifier(Options{HMACSecret: []byte(secret), Issuer: "iss1", Audience: "aud1"})
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]any{"iss": "iss1", "aud": "aud1"}
	hs := func(extra map[string]any) string {
		return sign(t, jwt.SigningMethodHS256, []byte(secret), claims(base, extra))
	}
	c, err := v.Verify(hs(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "u1" || !c.Has(PermTasksRead) || c.Has(PermTasksWrite) || !c.MemberOf("p1") || c.MemberOf("p2") {
		t.Errorf("claims = %+v", c)
	}
	for name, tok := range map[string]string{
		"empty":        "",
		"garbage":      "a.b.c",
		"too long":     strings.Repeat("a", MaxTokenLen+1),
		"expired":      hs(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}),
		"no exp":       hs(map[string]any{"exp": nil}),
		"future nbf":   hs(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}),
		"wrong iss":    hs(map[string]any{"iss": "other"}),
		"wrong aud":    hs(map[string]any{"aud": "other"}),
		"bad sub":      hs(map[string]any{"sub": "a.b"}),
		"no sub":       hs(map[string]any{"sub": nil}),
		"bad project":  hs(map[string]any{"projects": []string{"p.1"}}),
		"other secret": sign(t, jwt.SigningMethodHS256, []byte(secret+"x"), claims(base)),
		"HS384":        sign(t, jwt.SigningMethodHS384, []byte(secret), claims(base)),
		"none":         sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(base)),
	} {
		_, err := v.Verify(tok)
		if !errors.Is(err, ErrToken) {
			t.Errorf("%s: %v, want ErrToken", name, err)
			continue
		}
		if len(tok) > 10 && strings.Contains(err.Error(), tok) {
			t.Errorf("%s: the error echoes the token", name)
		}
	}
}

func TestVerifyPublicKeys(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name   string
		pub    any
		method jwt.SigningMethod
		priv   any
	}{
		{"RS256", &rsaKey.PublicKey, jwt.SigningMethodRS256, rsaKey},
		{"ES256", &ecKey.PublicKey, jwt.SigningMethodES256, ecKey},
		{"EdDSA", edPub, jwt.SigningMethodEdDSA, edPriv},
	} {
		pemKey := pemOf(t, tc.pub)
		v, err := NewVerifier(Options{PublicKeyPEM: pemKey})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if v.Algorithm() != tc.name {
			t.Errorf("%s: algorithm %s", tc.name, v.Algorithm())
		}
		if _, err := v.Verify(sign(t, tc.method, tc.priv, claims())); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		// The HS/RS confusion: the public key used as an HMAC secret.
		if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, pemKey, claims())); !errors.Is(err, ErrToken) {
			t.Errorf("%s: HS256 signed with the public key verified", tc.name)
		}
	}
}

func TestNewVerifierRefusesBadKeys(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, o := range map[string]Options{
		"none":         {},
		"short secret": {HMACSecret: []byte("short")},
		"both":         {HMACSecret: []byte(secret), PublicKeyPEM: pemOf(t, &small.PublicKey)},
		"small RSA":    {PublicKeyPEM: pemOf(t, &small.PublicKey)},
		"P-384":        {PublicKeyPEM: pemOf(t, &p384.PublicKey)},
		"not PEM":      {PublicKeyPEM: []byte("hello")},
	} {
		if _, err := NewVerifier(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestClaims(t *testing.T) {
	admin := &Claims{Permissions: []string{"admin"}}
	if !admin.Has(PermTasksWrite) || !admin.MemberOf("any") {
		t.Error("admin must imply every permission and project")
	}
	all := &Claims{Projects: []string{"*"}}
	if !all.MemberOf("p9") || all.Has(PermTasksRead) {
		t.Error(`projects ["*"]: member of every project, no permission`)
	}
}
