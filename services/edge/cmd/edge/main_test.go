package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
)

// token runs `edge token` and returns the printed token.
func token(t *testing.T, args []string, e env) string {
	t.Helper()
	var out bytes.Buffer
	if err := runToken(args, e.get, &out); err != nil {
		t.Fatalf("runToken(%q): %v", args, err)
	}
	s := out.String()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("output %q, want one line", s)
	}
	return strings.TrimSuffix(s, "\n")
}

func verify(t *testing.T, opts auth.Options, tok string) *auth.Claims {
	t.Helper()
	v, err := auth.NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

func TestRunTokenHMAC(t *testing.T) {
	before := time.Now()
	tok := token(t, []string{"--sub", "alice", "--projects", "p1, p2,,", "--permissions", "tasks:read,logs:read", "--ttl", "10m"},
		env{"EDGE_JWT_SECRET": testSecret})
	after := time.Now()
	c := verify(t, auth.Options{HMACSecret: []byte(testSecret)}, tok)
	if c.Subject != "alice" {
		t.Errorf("Subject = %q, want alice", c.Subject)
	}
	if want := []string{"p1", "p2"}; !slices.Equal(c.Projects, want) {
		t.Errorf("Projects = %q, want %q", c.Projects, want)
	}
	if want := []string{"tasks:read", "logs:read"}; !slices.Equal(c.Permissions, want) {
		t.Errorf("Permissions = %q, want %q", c.Permissions, want)
	}
	// exp is whole seconds, so allow a second either side.
	lo, hi := before.Add(10*time.Minute-time.Second), after.Add(10*time.Minute+time.Second)
	if c.ExpiresAt.Before(lo) || c.ExpiresAt.After(hi) {
		t.Errorf("ExpiresAt = %v, want within [%v, %v]", c.ExpiresAt, lo, hi)
	}
}

func TestRunTokenSecretFlag(t *testing.T) {
	flagSecret := "flag-secret-0123456789abcdef-0123456789"
	tok := token(t, []string{"--sub", "bob", "--jwt-secret", flagSecret, "--projects", "*"}, env{"EDGE_JWT_SECRET": testSecret})
	c := verify(t, auth.Options{HMACSecret: []byte(flagSecret)}, tok)
	if c.Subject != "bob" || !slices.Equal(c.Projects, []string{"*"}) || len(c.Permissions) != 0 {
		t.Errorf("claims = %+v, want bob, projects [*], no permissions", c)
	}
	if _, err := mustVerifier(t, auth.Options{HMACSecret: []byte(testSecret)}).Verify(tok); auth.ReasonOf(err) != auth.ReasonSignature {
		t.Errorf("verify with the env secret = %v, want %s (the flag wins)", err, auth.ReasonSignature)
	}
}

func mustVerifier(t *testing.T, opts auth.Options) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRunTokenIssuerAudience(t *testing.T) {
	tok := token(t, []string{"--sub", "carol"}, env{
		"EDGE_JWT_SECRET":   testSecret,
		"EDGE_JWT_ISSUER":   "https://id.example.com",
		"EDGE_JWT_AUDIENCE": "eventedge",
	})
	verify(t, auth.Options{HMACSecret: []byte(testSecret), Issuer: "https://id.example.com", Audience: "eventedge"}, tok)
	_, err := mustVerifier(t, auth.Options{HMACSecret: []byte(testSecret), Issuer: "https://other.example.com"}).Verify(tok)
	if auth.ReasonOf(err) != auth.ReasonIssuer {
		t.Errorf("verify with another issuer = %v, want %s", err, auth.ReasonIssuer)
	}
}

func TestRunTokenPrivateKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cases := []struct {
		alg  string
		priv any
		pub  any
	}{
		{"RS256", rsaKey, &rsaKey.PublicKey},
		{"ES256", ecKey, &ecKey.PublicKey},
		{"EdDSA", edKey, edKey.Public()},
	}
	for _, tc := range cases {
		t.Run(tc.alg, func(t *testing.T) {
			path := writePrivateKey(t, dir, tc.alg+".pem", tc.priv)
			pubPath := writePublicKey(t, dir, tc.alg+".pub.pem", tc.pub)
			// The private key wins over a secret in the environment.
			tok := token(t, []string{"--sub", "dave", "--permissions", "admin"},
				env{"EDGE_JWT_PRIVATE_KEY": path, "EDGE_JWT_SECRET": testSecret})
			// Verify through parseConfig, as a node configured with the
			// public key would.
			c := mustParse(t, []string{"--jwt-public-key", pubPath}, env{})
			v := mustVerifier(t, c.node.Auth)
			if v.Algorithm() != tc.alg {
				t.Errorf("verifier algorithm %s, want %s", v.Algorithm(), tc.alg)
			}
			claims, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if claims.Subject != "dave" || !claims.Has(auth.PermAdmin) {
				t.Errorf("claims = %+v, want dave with admin", claims)
			}
		})
	}
}

func writePrivateKey(t *testing.T, dir, name string, priv any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunTokenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	shortSecret := "short-s3cr3t-value"
	cases := []struct {
		name string
		args []string
		env  env
		want string
	}{
		{"missing --sub", []string{"--projects", "p1"}, env{"EDGE_JWT_SECRET": testSecret}, "--sub is required"},
		{"missing --sub and key", nil, env{}, "--sub is required"},
		{"missing key", []string{"--sub", "alice"}, env{}, "no key"},
		{"ttl zero", []string{"--sub", "alice", "--ttl", "0s"}, env{"EDGE_JWT_SECRET": testSecret}, "--ttl 0s: must be positive"},
		{"ttl negative", []string{"--sub", "alice", "--ttl=-1m"}, env{"EDGE_JWT_SECRET": testSecret}, "--ttl -1m0s: must be positive"},
		{"ttl not a duration", []string{"--sub", "alice", "--ttl", "10"}, env{"EDGE_JWT_SECRET": testSecret}, "ttl"},
		{"secret too short", []string{"--sub", "alice"}, env{"EDGE_JWT_SECRET": shortSecret}, "want at least 32"},
		{"private key missing", []string{"--sub", "alice", "--jwt-private-key", filepath.Join(dir, "nope.pem")}, env{}, "--jwt-private-key"},
		{"private key garbage", []string{"--sub", "alice"}, env{"EDGE_JWT_PRIVATE_KEY": garbage}, "not a PEM"},
		{"unknown flag", []string{"--sub", "alice", "--bogus"}, env{"EDGE_JWT_SECRET": testSecret}, "bogus"},
		{"unexpected argument", []string{"--sub", "alice", "extra"}, env{"EDGE_JWT_SECRET": testSecret}, "extra"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			quietStderr(t)
			var out bytes.Buffer
			err := runToken(tc.args, tc.env.get, &out)
			if err == nil {
				t.Fatalf("runToken succeeded: %q", out.String())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			for _, secret := range []string{testSecret, shortSecret} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the secret", err)
				}
			}
			if out.Len() != 0 {
				t.Errorf("printed %q on error", out.String())
			}
		})
	}
}

// TestRunTokenInvalidSubject: `edge token` refuses a --sub that every node
// would refuse.
func TestRunTokenInvalidSubject(t *testing.T) {
	var out bytes.Buffer
	err := runToken([]string{"--sub", "alice.smith"}, env{"EDGE_JWT_SECRET": testSecret}.get, &out)
	if err == nil {
		_, verr := mustVerifier(t, auth.Options{HMACSecret: []byte(testSecret)}).Verify(strings.TrimSpace(out.String()))
		t.Fatalf("runToken accepted --sub alice.smith and printed a token the verifier refuses (%v)", verr)
	}
}
