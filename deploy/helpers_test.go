package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the repository's root: the deploy module sits one below it.
const repoRoot = ".."

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if strings.Count(s, old) != 1 {
		t.Fatalf("%q occurs %d times, want once", old, strings.Count(s, old))
	}
	return strings.Replace(s, old, new, 1)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
