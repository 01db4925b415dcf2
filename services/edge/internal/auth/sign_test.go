package auth

import (
	"strings"
	"testing"
	"time"
)

// TestSignVerifyRoundTrip signs with each Signer kind and verifies with the
// matching Verifier: what `edge token` mints, a node accepts.
func TestSignVerifyRoundTrip(t *testing.T) {
	k := keys(t)
	hmac, err := NewHMACSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		alg    string
		signer func(t *testing.T) *Signer
		opts   Options
	}{
		{"HS256", func(*testing.T) *Signer { return hmac }, Options{HMACSecret: testSecret}},
		{"RS256", keySigner(privatePEM(t, k.rsa)), Options{PublicKeyPEM: publicPEM(t, &k.rsa.PublicKey)}},
		{"ES256", keySigner(privatePEM(t, k.ec)), Options{PublicKeyPEM: publicPEM(t, &k.ec.PublicKey)}},
		{"EdDSA", keySigner(privatePEM(t, k.ed)), Options{PublicKeyPEM: publicPEM(t, k.ed.Public())}},
	}
	for _, tc := range cases {
		t.Run(tc.alg, func(t *testing.T) {
			s := tc.signer(t)
			if got := s.method.Alg(); got != tc.alg {
				t.Errorf("signer algorithm = %s, want %s", got, tc.alg)
			}
			tc.opts.Now = fixedNow
			tc.opts.Issuer = "https://id.example.com"
			tc.opts.Audience = "eventedge"
			v, err := NewVerifier(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(TokenSpec{
				Subject:     "bob",
				Permissions: []string{PermTasksRead, PermSystemRead},
				Projects:    []string{AllProjects},
				TTL:         15 * time.Minute,
				Issuer:      "https://id.example.com",
				Audience:    "eventedge",
				Now:         testNow,
			})
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			assertClaims(t, c, Claims{
				Subject:     "bob",
				Permissions: []string{PermTasksRead, PermSystemRead},
				Projects:    []string{AllProjects},
				ExpiresAt:   testNow.Add(15 * time.Minute),
			})
		})
	}
}

func keySigner(privPEM []byte) func(t *testing.T) *Signer {
	return func(t *testing.T) *Signer {
		t.Helper()
		s, err := NewKeySigner(privPEM)
		if err != nil {
			t.Fatalf("NewKeySigner: %v", err)
		}
		return s
	}
}

func TestSignDefaultTTL(t *testing.T) {
	s, err := NewHMACSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(TokenSpec{Subject: "alice", Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Options{HMACSecret: testSecret, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := testNow.Add(time.Hour); !c.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v (default TTL 1h)", c.ExpiresAt, want)
	}
}

func TestSignDefaultNow(t *testing.T) {
	// Without Now the token is issued at the wall clock; a verifier on the
	// wall clock accepts it.
	s, err := NewHMACSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	tok, err := s.Sign(TokenSpec{Subject: "alice", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Options{HMACSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if lo := before.Add(time.Minute - time.Second); c.ExpiresAt.Before(lo) {
		t.Errorf("ExpiresAt = %v, want at least %v", c.ExpiresAt, lo)
	}
}

func TestSignExpiredByNegativeTTL(t *testing.T) {
	s, err := NewHMACSigner(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(TokenSpec{Subject: "alice", TTL: -time.Hour, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Options{HMACSecret: testSecret, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); ReasonOf(err) != ReasonExpired {
		t.Errorf("Verify = %v, want %s", err, ReasonExpired)
	}
}

func TestNewSignerErrors(t *testing.T) {
	k := keys(t)
	t.Run("short secret", func(t *testing.T) {
		secret := []byte("only-31-bytes-long-secret-value")
		_, err := NewHMACSigner(secret)
		if err == nil || !strings.Contains(err.Error(), "want at least 32") {
			t.Fatalf("NewHMACSigner(31 bytes) = %v, want a length error", err)
		}
		if strings.Contains(err.Error(), string(secret)) {
			t.Errorf("error %q contains the secret", err)
		}
	})
	for name, in := range map[string][]byte{
		"empty":       nil,
		"garbage":     []byte("not a key"),
		"public key":  publicPEM(t, &k.rsa.PublicKey),
		"garbage PEM": []byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"),
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := NewKeySigner(in); err == nil {
				t.Fatalf("NewKeySigner succeeded with %s", s.method.Alg())
			}
		})
	}
}

// TestKeySignerP384: ES256 needs P-256, so a P-384 key is refused when the
// signer is made, not later at Sign.
func TestKeySignerP384(t *testing.T) {
	s, err := NewKeySigner(privatePEM(t, keys(t).p384))
	if err == nil {
		_, serr := s.Sign(TokenSpec{Subject: "alice", Now: testNow})
		t.Fatalf("NewKeySigner accepts a P-384 key as ES256 (Sign then fails: %v)", serr)
	}
}
