package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(http.StatusOK)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	noEnv := func(string) string { return "" }

	for _, tc := range []struct {
		name    string
		args    []string
		getenv  func(string) string
		wantErr string
	}{
		{"ok", []string{srv.URL + "/healthz"}, noEnv, ""},
		{"from env", nil, func(k string) string {
			if k == "HEALTHCHECK_URL" {
				return srv.URL + "/healthz"
			}
			return ""
		}, ""},
		{"argument wins over env", []string{srv.URL + "/healthz"}, func(string) string { return srv.URL + "/down" }, ""},
		{"503", []string{srv.URL + "/down"}, noEnv, "503"},
		{"timeout", []string{"-timeout", "100ms", srv.URL + "/slow"}, noEnv, "deadline exceeded"},
		{"no URL", nil, noEnv, "no URL"},
		{"two URLs", []string{"a", "b"}, noEnv, "usage"},
		{"refused", []string{"http://127.0.0.1:1/healthz"}, noEnv, "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, tc.getenv)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("run: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("run: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
