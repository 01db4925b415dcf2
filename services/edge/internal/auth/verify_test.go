package auth

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerifyValid(t *testing.T) {
	for _, kk := range keyKinds(t) {
		t.Run(kk.alg, func(t *testing.T) {
			v := kk.verifier(t)
			if got := v.Algorithm(); got != kk.alg {
				t.Errorf("Algorithm() = %q, want %q", got, kk.alg)
			}
			tok := mint(t, kk.method, kk.signKey, jwt.MapClaims{
				"sub":         "alice_01-x",
				"iat":         testNow.Add(-time.Minute).Unix(),
				"exp":         testNow.Add(30 * time.Minute).Unix(),
				"permissions": []string{PermTasksRead, PermLogsRead},
				"projects":    []string{"p1", "proj-2"},
			})
			c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Claims{
				Subject:     "alice_01-x",
				Permissions: []string{PermTasksRead, PermLogsRead},
				Projects:    []string{"p1", "proj-2"},
				ExpiresAt:   testNow.Add(30 * time.Minute),
			}
			assertClaims(t, c, want)
		})
	}
}

func assertClaims(t *testing.T, got *Claims, want Claims) {
	t.Helper()
	if got.Subject != want.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, want.Subject)
	}
	if !slices.Equal(got.Permissions, want.Permissions) {
		t.Errorf("Permissions = %q, want %q", got.Permissions, want.Permissions)
	}
	if !slices.Equal(got.Projects, want.Projects) {
		t.Errorf("Projects = %q, want %q", got.Projects, want.Projects)
	}
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, want.ExpiresAt)
	}
}

func TestVerifyOptionalClaims(t *testing.T) {
	// No permissions and no projects: a valid token that can join only its
	// own user room.
	v := keyKinds(t)[0].verifier(t)
	tok := mint(t, jwt.SigningMethodHS256, testSecret, with(validClaims(), "permissions", nil, "projects", nil))
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(c.Permissions) != 0 || len(c.Projects) != 0 {
		t.Errorf("claims = %+v, want no permissions and no projects", c)
	}
}

func TestVerifyIssuerAudienceAccepted(t *testing.T) {
	v, err := NewVerifier(Options{HMACSecret: testSecret, Issuer: "https://id.example.com", Audience: "eventedge", Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	for name, aud := range map[string]any{
		"aud string":          "eventedge",
		"aud list":            []string{"other", "eventedge"},
		"aud list of one":     []string{"eventedge"},
		"aud list, first one": []string{"eventedge", "other"},
	} {
		t.Run(name, func(t *testing.T) {
			tok := mint(t, jwt.SigningMethodHS256, testSecret, with(validClaims(), "iss", "https://id.example.com", "aud", aud))
			if _, err := v.Verify(tok); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// refusal is a token a verifier must refuse with a given reason.
type refusal struct {
	name  string
	opts  func(t testing.TB) Options // nil: HS256 with testSecret at testNow
	token func(t testing.TB) string
	want  Reason
}

func hsOpts(testing.TB) Options { return Options{HMACSecret: testSecret, Now: fixedNow} }

func hsToken(c jwt.MapClaims) func(t testing.TB) string {
	return func(t testing.TB) string { return mint(t, jwt.SigningMethodHS256, testSecret, c) }
}

func TestVerifyRefused(t *testing.T) {
	issOpts := func(testing.TB) Options {
		return Options{HMACSecret: testSecret, Issuer: "https://id.example.com", Now: fixedNow}
	}
	audOpts := func(testing.TB) Options {
		return Options{HMACSecret: testSecret, Audience: "eventedge", Now: fixedNow}
	}
	rsaOpts := func(t testing.TB) Options {
		return Options{PublicKeyPEM: publicPEM(t, &keys(t).rsa.PublicKey), Now: fixedNow}
	}
	longSub := strings.Repeat("a", 65)

	cases := []refusal{
		{name: "empty", token: func(testing.TB) string { return "" }, want: ReasonMissing},
		{name: "garbage", token: func(testing.TB) string { return "not a token" }, want: ReasonMalformed},
		{name: "two segments", token: func(testing.TB) string { return "eyJhbGciOiJIUzI1NiJ9.e30" }, want: ReasonMalformed},
		{name: "claims not base64", want: ReasonMalformed, token: func(t testing.TB) string {
			return b64(t, map[string]string{"alg": "HS256", "typ": "JWT"}) + ".!!!.c2ln"
		}},
		{name: "claims not JSON", want: ReasonMalformed, token: func(t testing.TB) string {
			return b64(t, map[string]string{"alg": "HS256", "typ": "JWT"}) + ".bm90LWpzb24.c2ln"
		}},
		{name: "three garbage segments", token: func(testing.TB) string { return "abc.def.ghi" }, want: ReasonMalformed},
		{name: "header not JSON", want: ReasonMalformed, token: func(testing.TB) string { return "bm90LWpzb24.e30.c2ln" }},
		{name: "too long", want: ReasonTooLong, token: func(testing.TB) string { return strings.Repeat("a", MaxTokenLen+1) }},
		{name: "too long but otherwise valid", want: ReasonTooLong, token: func(t testing.TB) string {
			return mint(t, jwt.SigningMethodHS256, testSecret, with(validClaims(), "pad", strings.Repeat("x", MaxTokenLen)))
		}},
		{name: "expired", want: ReasonExpired, token: hsToken(with(validClaims(), "iat", testNow.Add(-2*time.Hour).Unix(), "exp", testNow.Add(-time.Hour).Unix()))},
		{name: "expired just beyond leeway", want: ReasonExpired, token: hsToken(with(validClaims(), "iat", testNow.Add(-time.Hour).Unix(), "exp", testNow.Add(-DefaultLeeway-time.Second).Unix()))},
		{name: "missing exp", want: ReasonMissingExp, token: hsToken(with(validClaims(), "exp", nil))},
		{name: "exp not a number", want: ReasonMalformed, token: hsToken(with(validClaims(), "exp", "tomorrow"))},
		{name: "nbf in the future", want: ReasonNotYetValid, token: hsToken(with(validClaims(), "nbf", testNow.Add(time.Minute).Unix()))},
		{name: "iat in the future", want: ReasonNotYetValid, token: hsToken(with(validClaims(), "iat", testNow.Add(time.Minute).Unix()))},
		{name: "bad signature: other secret", want: ReasonSignature, token: func(t testing.TB) string {
			return mint(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!"), validClaims())
		}},
		{name: "bad signature: empty", want: ReasonSignature, token: func(t testing.TB) string {
			tok := mint(t, jwt.SigningMethodHS256, testSecret, validClaims())
			return tok[:strings.LastIndexByte(tok, '.')+1]
		}},
		{name: "alg none", want: ReasonAlgorithm, token: noneToken},
		{name: "alg none to RS256 verifier", opts: rsaOpts, want: ReasonAlgorithm, token: noneToken},
		{name: "alg missing from header", want: ReasonAlgorithm, token: func(t testing.TB) string {
			return b64(t, map[string]string{"typ": "JWT"}) + "." + b64(t, validClaims()) + ".c2ln"
		}},
		{name: "alg unknown", want: ReasonAlgorithm, token: func(t testing.TB) string {
			return b64(t, map[string]string{"alg": "HS999", "typ": "JWT"}) + "." + b64(t, validClaims()) + ".c2ln"
		}},
		{name: "HS256 signed with the RSA public key PEM", opts: rsaOpts, want: ReasonAlgorithm, token: func(t testing.TB) string {
			// The HS/RS confusion attack: the public key is public, so if an
			// RS256 verifier honoured the token's alg it would verify this.
			return mint(t, jwt.SigningMethodHS256, publicPEM(t, &keys(t).rsa.PublicKey), validClaims())
		}},
		// Same key, other algorithm of the same family: the signature is
		// genuine, so only the configured algorithm list refuses these.
		{name: "HS384 with the right secret", want: ReasonAlgorithm, token: func(t testing.TB) string {
			return mint(t, jwt.SigningMethodHS384, testSecret, validClaims())
		}},
		{name: "HS512 with the right secret", want: ReasonAlgorithm, token: func(t testing.TB) string {
			return mint(t, jwt.SigningMethodHS512, testSecret, validClaims())
		}},
		{name: "RS512 with the right key", opts: rsaOpts, want: ReasonAlgorithm, token: func(t testing.TB) string {
			return mint(t, jwt.SigningMethodRS512, keys(t).rsa, validClaims())
		}},
		{name: "PS256 with the right key", opts: rsaOpts, want: ReasonAlgorithm, token: func(t testing.TB) string {
			return mint(t, jwt.SigningMethodPS256, keys(t).rsa, validClaims())
		}},
		{name: "RS256 token to HS256 verifier", want: ReasonAlgorithm, token: func(t testing.TB) string {
			return mint(t, jwt.SigningMethodRS256, keys(t).rsa, validClaims())
		}},
		{name: "wrong issuer", opts: issOpts, want: ReasonIssuer, token: hsToken(with(validClaims(), "iss", "https://evil.example.com"))},
		{name: "missing issuer", opts: issOpts, want: ReasonIssuer, token: hsToken(validClaims())},
		{name: "wrong audience", opts: audOpts, want: ReasonAudience, token: hsToken(with(validClaims(), "aud", "other"))},
		{name: "wrong audience list", opts: audOpts, want: ReasonAudience, token: hsToken(with(validClaims(), "aud", []string{"a", "b"}))},
		{name: "missing audience", opts: audOpts, want: ReasonAudience, token: hsToken(validClaims())},
		{name: "sub missing", want: ReasonClaims, token: hsToken(with(validClaims(), "sub", nil))},
		{name: "sub empty", want: ReasonClaims, token: hsToken(with(validClaims(), "sub", ""))},
		{name: "sub with dot", want: ReasonClaims, token: hsToken(with(validClaims(), "sub", "alice.bob"))},
		{name: "sub with wildcard", want: ReasonClaims, token: hsToken(with(validClaims(), "sub", "*"))},
		{name: "sub with colon", want: ReasonClaims, token: hsToken(with(validClaims(), "sub", "user:bob"))},
		{name: "sub too long", want: ReasonClaims, token: hsToken(with(validClaims(), "sub", longSub))},
		{name: "project with dot", want: ReasonClaims, token: hsToken(with(validClaims(), "projects", []string{"p1", "p.2"}))},
		{name: "project empty", want: ReasonClaims, token: hsToken(with(validClaims(), "projects", []string{""}))},
		{name: "project wildcard >", want: ReasonClaims, token: hsToken(with(validClaims(), "projects", []string{">"}))},
		{name: "permissions not a list", want: ReasonMalformed, token: hsToken(with(validClaims(), "permissions", "admin"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := hsOpts(t)
			if tc.opts != nil {
				opts = tc.opts(t)
			}
			v, err := NewVerifier(opts)
			if err != nil {
				t.Fatal(err)
			}
			tok := tc.token(t)
			c, err := v.Verify(tok)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", c)
			}
			if c != nil {
				t.Errorf("Verify returned claims %+v with error %v", c, err)
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if got := ReasonOf(err); got != tc.want {
				t.Errorf("reason = %s (%v), want %s", got, err, tc.want)
			}
			assertNoToken(t, err, tok)
		})
	}
}

// assertNoToken fails if err's message holds tok or any part of it long
// enough to matter (a signature, a claims segment).
func assertNoToken(t *testing.T, err error, tok string) {
	t.Helper()
	msg := err.Error()
	if tok != "" && strings.Contains(msg, tok) {
		t.Fatalf("error message %q contains the token", msg)
	}
	for _, seg := range strings.Split(tok, ".") {
		if len(seg) >= 8 && strings.Contains(msg, seg) {
			t.Fatalf("error message %q contains token segment %q", msg, seg)
		}
	}
}

// noneToken is an unsigned token: header {"alg":"none"}, valid claims and an
// empty signature, built by hand as an attacker would.
func noneToken(t testing.TB) string {
	return b64(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(t, validClaims()) + "."
}

func TestVerifyAlgNoneEveryKey(t *testing.T) {
	for _, kk := range keyKinds(t) {
		t.Run(kk.alg, func(t *testing.T) {
			// Both the usual "none" and a case variant some libraries accept.
			for _, alg := range []string{"none", "None", "NONE"} {
				tok := b64(t, map[string]string{"alg": alg, "typ": "JWT"}) + "." + b64(t, validClaims()) + "."
				_, err := kk.verifier(t).Verify(tok)
				if got := ReasonOf(err); got != ReasonAlgorithm {
					t.Errorf("alg %q: reason = %s (%v), want %s", alg, got, err, ReasonAlgorithm)
				}
			}
		})
	}
}

// TestVerifyCrossAlgorithm presents every key type's token to every other
// key type's verifier: the algorithm is fixed by the configured key, never by
// the token.
func TestVerifyCrossAlgorithm(t *testing.T) {
	kinds := keyKinds(t)
	for _, signer := range kinds {
		for _, verifier := range kinds {
			if signer.alg == verifier.alg {
				continue
			}
			t.Run(signer.alg+" to "+verifier.alg, func(t *testing.T) {
				tok := mint(t, signer.method, signer.signKey, validClaims())
				_, err := verifier.verifier(t).Verify(tok)
				if got := ReasonOf(err); got != ReasonAlgorithm {
					t.Errorf("reason = %s (%v), want %s", got, err, ReasonAlgorithm)
				}
				assertNoToken(t, err, tok)
			})
		}
	}
}

func TestVerifyBadSignature(t *testing.T) {
	for _, kk := range keyKinds(t) {
		t.Run(kk.alg, func(t *testing.T) {
			v := kk.verifier(t)
			t.Run("other key", func(t *testing.T) {
				tok := mint(t, kk.method, kk.other, validClaims())
				_, err := v.Verify(tok)
				if got := ReasonOf(err); got != ReasonSignature {
					t.Errorf("reason = %s (%v), want %s", got, err, ReasonSignature)
				}
				assertNoToken(t, err, tok)
			})
			t.Run("claims swapped", func(t *testing.T) {
				// A validly signed token whose claims were replaced by an
				// attacker granting themselves admin.
				tok := mint(t, kk.method, kk.signKey, validClaims())
				parts := strings.Split(tok, ".")
				parts[1] = b64(t, with(validClaims(), "permissions", []string{PermAdmin}))
				forged := strings.Join(parts, ".")
				_, err := v.Verify(forged)
				if got := ReasonOf(err); got != ReasonSignature {
					t.Errorf("reason = %s (%v), want %s", got, err, ReasonSignature)
				}
				assertNoToken(t, err, forged)
			})
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	expiredBy := func(d time.Duration) string {
		return mint(t, jwt.SigningMethodHS256, testSecret, with(validClaims(),
			"iat", testNow.Add(-time.Hour).Unix(), "exp", testNow.Add(-d).Unix()))
	}
	nbfIn := func(d time.Duration) string {
		return mint(t, jwt.SigningMethodHS256, testSecret, with(validClaims(), "nbf", testNow.Add(d).Unix()))
	}
	cases := []struct {
		name   string
		leeway time.Duration
		token  string
		want   Reason // "" means accepted
	}{
		{"expired 1s ago, default leeway", 0, expiredBy(time.Second), ""},
		{"expired 3s ago, default leeway", 0, expiredBy(3 * time.Second), ReasonExpired},
		{"expired 1s ago, no leeway", -1, expiredBy(time.Second), ReasonExpired},
		{"expired 9s ago, 10s leeway", 10 * time.Second, expiredBy(9 * time.Second), ""},
		{"expired 11s ago, 10s leeway", 10 * time.Second, expiredBy(11 * time.Second), ReasonExpired},
		{"nbf in 1s, default leeway", 0, nbfIn(time.Second), ""},
		{"nbf in 1s, no leeway", -1, nbfIn(time.Second), ReasonNotYetValid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(Options{HMACSecret: testSecret, Leeway: tc.leeway, Now: fixedNow})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(tc.token)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Verify: %v, want accepted", err)
			case tc.want != "" && ReasonOf(err) != tc.want:
				t.Errorf("reason = %s (%v), want %s", ReasonOf(err), err, tc.want)
			}
		})
	}
}

func TestVerifierLeewayOption(t *testing.T) {
	for _, tc := range []struct {
		in, want time.Duration
	}{
		{0, DefaultLeeway},
		{-1, 0},
		{-time.Hour, 0},
		{5 * time.Second, 5 * time.Second},
	} {
		v, err := NewVerifier(Options{HMACSecret: testSecret, Leeway: tc.in})
		if err != nil {
			t.Fatal(err)
		}
		if got := v.Leeway(); got != tc.want {
			t.Errorf("Leeway %v: Leeway() = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestVerifyMaxTokenLenBoundary(t *testing.T) {
	v := keyKinds(t)[0].verifier(t)
	_, err := v.Verify(strings.Repeat("a", MaxTokenLen))
	if got := ReasonOf(err); got != ReasonMalformed {
		t.Errorf("token of MaxTokenLen bytes: reason = %s (%v), want %s (parsed, not refused for length)", got, err, ReasonMalformed)
	}
}

func TestNewVerifierKeys(t *testing.T) {
	k := keys(t)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	cases := []struct {
		name    string
		opts    Options
		wantAlg string
		wantErr string // substring; "" means no error
	}{
		{name: "HMAC secret of 32 bytes", opts: Options{HMACSecret: testSecret}, wantAlg: "HS256"},
		{name: "RSA 2048 PKIX", opts: Options{PublicKeyPEM: publicPEM(t, &k.rsa.PublicKey)}, wantAlg: "RS256"},
		{name: "RSA 2048 PKCS1", opts: Options{PublicKeyPEM: pkcs1}, wantAlg: "RS256"},
		{name: "ECDSA P-256", opts: Options{PublicKeyPEM: publicPEM(t, &k.ec.PublicKey)}, wantAlg: "ES256"},
		{name: "Ed25519", opts: Options{PublicKeyPEM: publicPEM(t, k.ed.Public())}, wantAlg: "EdDSA"},

		{name: "no key", opts: Options{}, wantErr: "none configured"},
		{name: "both keys", opts: Options{HMACSecret: testSecret, PublicKeyPEM: publicPEM(t, &k.rsa.PublicKey)}, wantErr: "not both"},
		{name: "HMAC secret of 31 bytes", opts: Options{HMACSecret: testSecret[:31]}, wantErr: "want at least 32"},
		{name: "RSA 1024", opts: Options{PublicKeyPEM: publicPEM(t, &k.rsa1k.PublicKey)}, wantErr: "1024 bits, want at least 2048"},
		{name: "ECDSA P-384", opts: Options{PublicKeyPEM: publicPEM(t, &k.p384.PublicKey)}, wantErr: "P-384, want P-256"},
		{name: "garbage PEM", opts: Options{PublicKeyPEM: []byte("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n")}, wantErr: "not a PEM"},
		{name: "not PEM at all", opts: Options{PublicKeyPEM: []byte("hello")}, wantErr: "not a PEM"},
		{name: "private key instead of public", opts: Options{PublicKeyPEM: privatePEM(t, k.ed)}, wantErr: "not a PEM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(tc.opts)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("NewVerifier succeeded (alg %s), want error containing %q", v.Algorithm(), tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
				}
				if len(tc.opts.HMACSecret) > 0 && strings.Contains(err.Error(), string(tc.opts.HMACSecret)) {
					t.Errorf("error %q contains the secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			if got := v.Algorithm(); got != tc.wantAlg {
				t.Errorf("Algorithm() = %q, want %q", got, tc.wantAlg)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	cases := []struct {
		err  *Error
		want string
	}{
		{&Error{Reason: ReasonExpired}, "token expired"},
		{&Error{Reason: ReasonAlgorithm, Detail: "want RS256"}, "token bad_algorithm: want RS256"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestReasonOf(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want Reason
	}{
		{"*Error", &Error{Reason: ReasonExpired}, ReasonExpired},
		{"wrapped *Error", fmt.Errorf("auth: %w", &Error{Reason: ReasonIssuer}), ReasonIssuer},
		{"other error", errors.New("boom"), ReasonMalformed},
	}
	for _, tc := range cases {
		if got := ReasonOf(tc.err); got != tc.want {
			t.Errorf("%s: ReasonOf = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestVerifyConcurrent checks, under -race, that one Verifier serves many
// goroutines.
func TestVerifyConcurrent(t *testing.T) {
	kk := keyKinds(t)[2] // ES256: verification does real work
	v := kk.verifier(t)
	good := mint(t, kk.method, kk.signKey, validClaims())
	bad := mint(t, kk.method, kk.other, validClaims())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := v.Verify(good); err != nil {
					errs <- fmt.Errorf("goroutine %d: good token: %w", i, err)
					return
				}
				if _, err := v.Verify(bad); ReasonOf(err) != ReasonSignature {
					errs <- fmt.Errorf("goroutine %d: bad token: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
