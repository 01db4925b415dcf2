package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/proto/room"
)

// The fuzz targets' verifiers: HS256 with testSecret on the fixed clock,
// one without and one with an issuer and an audience to match.
const (
	fuzzIssuer   = "https://id.example.com"
	fuzzAudience = "eventedge"
)

func fuzzVerifiers(f *testing.F) (plain, strict *Verifier) {
	f.Helper()
	plain, err := NewVerifier(Options{HMACSecret: testSecret, Now: fixedNow})
	if err != nil {
		f.Fatal(err)
	}
	strict, err = NewVerifier(Options{HMACSecret: testSecret, Now: fixedNow, Issuer: fuzzIssuer, Audience: fuzzAudience})
	if err != nil {
		f.Fatal(err)
	}
	return plain, strict
}

// signRaw is a token whose header and claims segments are exactly the given
// bytes, signed with HS256 and testSecret whatever they say: the fuzzer
// cannot forge a signature, so this is how its claims reach the checks
// after it.
func signRaw(header, claims []byte) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, testSecret)
	mac.Write([]byte(input))
	return input + "." + enc.EncodeToString(mac.Sum(nil))
}

// FuzzClaims feeds arbitrary JOSE headers and claims, correctly signed, to
// Verify, so every input gets past the signature to the claim checks and
// the mapping into Claims. Refusals must be *Error values built from fixed
// texts; an accepted token must have had alg HS256 and its claims must obey
// the documented rules and be exactly the token's.
func FuzzClaims(f *testing.F) {
	hs := []byte(`{"alg":"HS256","typ":"JWT"}`)
	valid, err := json.Marshal(validClaims())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(hs, valid) // more seeds in testdata/fuzz/FuzzClaims
	plain, strict := fuzzVerifiers(f)
	f.Fuzz(func(t *testing.T, header, claims []byte) {
		tok := signRaw(header, claims)
		for _, v := range []*Verifier{plain, strict} {
			c, err := v.Verify(tok)
			checkResult(t, v, tok, c, err)
			if err != nil {
				continue
			}
			checkAccepted(t, v, header, claims, c)
		}
	})
}

// FuzzVerify feeds arbitrary strings to Verify as tokens: it never panics,
// refusals are *Error values built from fixed texts (so a log line or close
// reason never carries the token), and whatever is accepted (a seed's
// genuine token) obeys the rules of Claims.
func FuzzVerify(f *testing.F) {
	for _, tok := range []string{
		signRaw([]byte(`{"alg":"HS256","typ":"JWT"}`), []byte(`{"sub":"alice","exp":1893557045,"iat":1893553445,"permissions":["tasks:read"],"projects":["p1"]}`)),
		signRaw([]byte(`{"alg":"HS256"}`), []byte(`{"sub":"bob","exp":1893557045,"iss":"https://id.example.com","aud":["eventedge"]}`)),
		signRaw([]byte(`{"alg":"none"}`), []byte(`{"sub":"alice","exp":1893557045}`)),
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6MTg5MzU1NzA0NX0.",
		"", ".", "..", "...", "a.b.c", "not a token", "eyJhbGciOiJIUzI1NiJ9.e30",
		strings.Repeat("a", MaxTokenLen+1),
	} {
		f.Add(tok)
	}
	plain, strict := fuzzVerifiers(f)
	f.Fuzz(func(t *testing.T, tok string) {
		for _, v := range []*Verifier{plain, strict} {
			c, err := v.Verify(tok)
			checkResult(t, v, tok, c, err)
		}
	})
}

// errorDetails are the texts an *Error's Detail may have, digits aside:
// fixed, so that no part of a token can reach a message.
var errorDetails = regexp.MustCompile(`^(|[0-9]+ bytes, at most [0-9]+|want (HS|RS|ES)[0-9]+|want EdDSA|` +
	`sub must be 1-64 characters of A-Z a-z 0-9 _ -|projects: invalid project id|` +
	`exp is required|iss is required|aud is required|a required claim is missing)$`)

var knownReasons = []Reason{
	ReasonMissing, ReasonMalformed, ReasonTooLong, ReasonAlgorithm, ReasonSignature, ReasonExpired,
	ReasonNotYetValid, ReasonMissingExp, ReasonIssuer, ReasonAudience, ReasonClaims,
}

// checkResult checks what Verify returns for any token, and that a second
// call returns the same.
func checkResult(t *testing.T, v *Verifier, tok string, c *Claims, err error) {
	t.Helper()
	if err != nil {
		if c != nil {
			t.Fatalf("Verify returned claims %+v and error %v", c, err)
		}
		var ae *Error
		if !errors.As(err, &ae) {
			t.Fatalf("error %v (%T) is not an *Error", err, err)
		}
		if !slices.Contains(knownReasons, ae.Reason) {
			t.Fatalf("unknown reason %q", ae.Reason)
		}
		if !errorDetails.MatchString(ae.Detail) {
			t.Fatalf("error detail %q is not one of the fixed texts", ae.Detail)
		}
		if _, err2 := v.Verify(tok); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("Verify again: %v, first %v", err2, err)
		}
		return
	}
	if c == nil {
		t.Fatal("Verify returned neither claims nor an error")
	}
	if !room.ValidID(c.Subject) {
		t.Fatalf("accepted sub %q, not a valid id", c.Subject)
	}
	for _, p := range c.Projects {
		if p != AllProjects && !room.ValidID(p) {
			t.Fatalf("accepted project %q, not a valid id", p)
		}
	}
	now := fixedNow()
	if c.ExpiresAt.IsZero() || c.ExpiresAt.Before(now.Add(-v.Leeway()-time.Second)) {
		// NumericDate keeps fractions; a second of slack covers rounding.
		t.Fatalf("accepted a token expiring at %v, now %v, leeway %v", c.ExpiresAt, now, v.Leeway())
	}
	if !c.IssuedAt.IsZero() && c.IssuedAt.After(now.Add(v.Leeway()+time.Second)) {
		t.Fatalf("accepted a token issued at %v, after now %v", c.IssuedAt, now)
	}
	if err := c.CanJoin(room.User(c.Subject)); err != nil {
		t.Fatalf("sub %q may not join its own room: %v", c.Subject, err)
	}
	if c2, err := v.Verify(tok); err != nil || c2.Subject != c.Subject || !c2.ExpiresAt.Equal(c.ExpiresAt) ||
		!slices.Equal(c2.Permissions, c.Permissions) || !slices.Equal(c2.Projects, c.Projects) {
		t.Fatalf("Verify again: %+v %v, first %+v", c2, err, c)
	}
}

// checkAccepted checks an accepted token against an independent reading of
// its header and claims.
func checkAccepted(t *testing.T, v *Verifier, header, claims []byte, c *Claims) {
	t.Helper()
	var h struct {
		Alg any `json:"alg"`
	}
	if err := json.Unmarshal(header, &h); err != nil || h.Alg != "HS256" {
		t.Fatalf("accepted a token whose header %q has alg %v (%v); want exactly HS256", header, h.Alg, err)
	}
	var want struct {
		Sub         string          `json:"sub"`
		Iss         string          `json:"iss"`
		Aud         json.RawMessage `json:"aud"`
		Permissions []string        `json:"permissions"`
		Projects    []string        `json:"projects"`
	}
	if err := json.Unmarshal(claims, &want); err != nil {
		t.Fatalf("accepted claims %q that do not decode: %v", claims, err)
	}
	if c.Subject != want.Sub || !slices.Equal(c.Permissions, want.Permissions) || !slices.Equal(c.Projects, want.Projects) {
		t.Fatalf("claims %q mapped to %+v", claims, c)
	}
	if v.issuer != "" && want.Iss != v.issuer {
		t.Fatalf("accepted iss %q, want %q", want.Iss, v.issuer)
	}
	if v.audience != "" {
		var auds []string
		var one string
		if json.Unmarshal(want.Aud, &one) == nil {
			auds = []string{one}
		} else if err := json.Unmarshal(want.Aud, &auds); err != nil {
			t.Fatalf("accepted aud %s: %v", want.Aud, err)
		}
		if !slices.Contains(auds, v.audience) {
			t.Fatalf("accepted aud %s, want it to hold %q", want.Aud, v.audience)
		}
	}
	for _, p := range []string{PermTasksRead, PermTasksWrite, PermLogsRead, PermSystemRead, PermAdmin} {
		granted := slices.Contains(want.Permissions, p) || slices.Contains(want.Permissions, PermAdmin)
		if c.Has(p) != granted {
			t.Fatalf("permissions %q: Has(%s) = %v", want.Permissions, p, c.Has(p))
		}
	}
	if c.Has(PermAdmin) {
		return // admin may join any room
	}
	if err := c.CanJoin(room.User(c.Subject + "x")); err == nil {
		t.Fatalf("sub %q may join another user's room", c.Subject)
	}
}
