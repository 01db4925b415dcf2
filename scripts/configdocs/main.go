// Command configdocs writes docs/configuration.md: every flag and
// environment variable of every eventedge service, taken from the services
// themselves.
//
// It builds the service binaries (one `go build` of all of them, so the Go
// build cache supplies every compiled package and only the link is redone),
// runs each with -h in an empty environment and parses what the standard
// flag package prints (flag.PrintDefaults). The flag sets in the services'
// cmd packages are the single source: a flag added there shows up here
// after `make docs`, and `make test` fails until it does
// (TestConfigurationDocUpToDate). The cmd packages are package main, so
// nothing can import their flag sets; running the binaries is the one way
// to read them that cannot drift from what the binaries accept.
//
// Usage:
//
//	configdocs [-o docs/configuration.md]    from anywhere inside the repository (the directory holding go.work is its root)
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	out := flag.String("o", filepath.Join("docs", "configuration.md"), "file to write, relative to the repository root; - for stdout")
	flag.Parse()
	start := time.Now()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "configdocs:", err)
		os.Exit(1)
	}
	if *out != "-" {
		fmt.Fprintf(os.Stderr, "configdocs: wrote %s in %s\n", *out, time.Since(start).Round(10*time.Millisecond))
	}
}

func run(out string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	doc, err := generate(root)
	if err != nil {
		return err
	}
	if out == "-" {
		_, err = os.Stdout.Write(doc)
		return err
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	return os.WriteFile(out, doc, 0o644)
}
