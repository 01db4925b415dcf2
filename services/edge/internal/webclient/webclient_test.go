package webclient_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/eventedge/eventedge/services/edge/internal/webclient"
)

func TestHandler(t *testing.T) {
	src, err := os.ReadFile("client.js")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(src)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`

	srv := httptest.NewServer(webclient.Handler())
	defer srv.Close()

	tests := []struct {
		name        string
		method      string
		ifNoneMatch string
		wantStatus  int
		wantBody    bool
	}{
		{"get", http.MethodGet, "", http.StatusOK, true},
		{"head", http.MethodHead, "", http.StatusOK, false},
		{"unchanged", http.MethodGet, etag, http.StatusNotModified, false},
		{"unchanged weak", http.MethodGet, "W/" + etag, http.StatusNotModified, false},
		{"unchanged in a list", http.MethodGet, `"old", ` + etag, http.StatusNotModified, false},
		{"any", http.MethodGet, "*", http.StatusNotModified, false},
		{"changed", http.MethodGet, `"0123"`, http.StatusOK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+"/v1/client.js", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.ifNoneMatch != "" {
				req.Header.Set("If-None-Match", tt.ifNoneMatch)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("ETag"); got != etag {
				t.Errorf("ETag %s, want %s", got, etag)
			}
			if got, want := resp.Header.Get("Cache-Control"), "public, max-age=3600, must-revalidate"; got != want {
				t.Errorf("Cache-Control %q, want %q", got, want)
			}
			if tt.wantStatus == http.StatusOK {
				for k, want := range map[string]string{
					"Content-Type":                "text/javascript; charset=utf-8",
					"Access-Control-Allow-Origin": "*",
					"X-Content-Type-Options":      "nosniff",
				} {
					if got := resp.Header.Get(k); got != want {
						t.Errorf("%s %q, want %q", k, got, want)
					}
				}
				if tt.method == http.MethodHead && resp.ContentLength != int64(len(src)) {
					t.Errorf("HEAD Content-Length %d, want %d", resp.ContentLength, len(src))
				}
			}
			if tt.wantBody && string(body) != string(src) {
				t.Errorf("body is %d bytes, not client.js (%d bytes)", len(body), len(src))
			}
			if !tt.wantBody && len(body) != 0 {
				t.Errorf("body of %d bytes, want none", len(body))
			}
		})
	}
}
