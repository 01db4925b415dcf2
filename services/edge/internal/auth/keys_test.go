package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the clock of every verifier and signer in these tests, so no
// test depends on the wall clock. It has no sub-second part because JWT
// NumericDates are whole seconds.
var testNow = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// testSecret is a valid (32-byte) HMAC secret.
var testSecret = []byte("0123456789abcdef0123456789abcdef")

// testKeys are the asymmetric keys of the tests. RSA key generation is slow
// under -race, so each key is generated once per test binary.
type testKeys struct {
	rsa   *rsa.PrivateKey
	rsa2  *rsa.PrivateKey // a second RSA key, for wrong-key signatures
	ec    *ecdsa.PrivateKey
	ec2   *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
	ed2   ed25519.PrivateKey
	rsa1k *rsa.PrivateKey // too short for the verifier
	p384  *ecdsa.PrivateKey
}

var generateKeys = sync.OnceValues(func() (*testKeys, error) {
	var (
		k   testKeys
		err error
	)
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.rsa1k, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		return nil, err
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return nil, err
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	if _, k.ed2, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	return &k, nil
})

func keys(t testing.TB) *testKeys {
	t.Helper()
	k, err := generateKeys()
	if err != nil {
		t.Fatalf("generate keys: %v", err)
	}
	return k
}

// publicPEM encodes pub as a PKIX "PUBLIC KEY" PEM block.
func publicPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// privatePEM encodes priv as a PKCS #8 "PRIVATE KEY" PEM block.
func privatePEM(t testing.TB, priv any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatalf("marshal private key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// keyKind is one of the four accepted key types, with what signs and what
// verifies its tokens.
type keyKind struct {
	alg     string
	method  jwt.SigningMethod
	signKey any     // for jwt.Token.SignedString
	other   any     // another key of the same type, for wrong-key signatures
	opts    Options // the verifier options for this key, clock fixed
}

func keyKinds(t testing.TB) []keyKind {
	t.Helper()
	k := keys(t)
	return []keyKind{
		{alg: "HS256", method: jwt.SigningMethodHS256, signKey: testSecret, other: []byte("another-secret-of-at-least-32-bytes!"),
			opts: Options{HMACSecret: testSecret, Now: fixedNow}},
		{alg: "RS256", method: jwt.SigningMethodRS256, signKey: k.rsa, other: k.rsa2,
			opts: Options{PublicKeyPEM: publicPEM(t, &k.rsa.PublicKey), Now: fixedNow}},
		{alg: "ES256", method: jwt.SigningMethodES256, signKey: k.ec, other: k.ec2,
			opts: Options{PublicKeyPEM: publicPEM(t, &k.ec.PublicKey), Now: fixedNow}},
		{alg: "EdDSA", method: jwt.SigningMethodEdDSA, signKey: k.ed, other: k.ed2,
			opts: Options{PublicKeyPEM: publicPEM(t, k.ed.Public()), Now: fixedNow}},
	}
}

func (kk keyKind) verifier(t testing.TB) *Verifier {
	t.Helper()
	v, err := NewVerifier(kk.opts)
	if err != nil {
		t.Fatalf("NewVerifier(%s): %v", kk.alg, err)
	}
	return v
}

// mint signs claims with method and key through the jwt library directly, so
// tests can build tokens the Signer never would (no exp, nbf, odd claims).
func mint(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return tok
}

// validClaims are claims every verifier with the default options accepts
// at testNow.
func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":         "alice",
		"iat":         testNow.Unix(),
		"exp":         testNow.Add(time.Hour).Unix(),
		"permissions": []string{PermTasksRead},
		"projects":    []string{"p1"},
	}
}

// with returns a copy of c with the given claims set; a nil value deletes.
func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// b64 is the JWT segment encoding of v's JSON.
func b64(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
