package auth

import (
	"slices"
	"testing"
)

// BenchmarkVerify is a connection's token check: an HS256 token of the
// claims `edge token` writes (sub, iat, exp, one permission, one project),
// parsed, its signature and times checked, its claims returned. Every
// connection pays it once, and again on each token refresh.
func BenchmarkVerify(b *testing.B) {
	kks := keyKinds(b)
	kk := kks[slices.IndexFunc(kks, func(k keyKind) bool { return k.alg == "HS256" })]
	v := kk.verifier(b)
	tok := mint(b, kk.method, kk.signKey, validClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
