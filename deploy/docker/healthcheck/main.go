// Command healthcheck is the HEALTHCHECK of the eventedge images: they are
// built FROM scratch, with no shell, curl or wget, so this static program
// does the one thing needed. It GETs one URL and exits 0 when the answer is
// 2xx, 1 otherwise (Docker's "unhealthy"), within a short timeout.
//
//	healthcheck [-timeout 2s] [URL]
//
// URL defaults to $HEALTHCHECK_URL, which each image sets to its service's
// admin /healthz on 127.0.0.1; a container whose admin address was changed
// sets HEALTHCHECK_URL to match. Only loopback and other addresses given on
// the command line are ever dialled: no proxy from the environment is used.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 2*time.Second, "how long the whole check may take")
	if err := fs.Parse(args); err != nil {
		return err
	}
	url := getenv("HEALTHCHECK_URL")
	switch fs.NArg() {
	case 0:
	case 1:
		url = fs.Arg(0)
	default:
		return errors.New("usage: healthcheck [-timeout 2s] [URL]")
	}
	if url == "" {
		return errors.New("no URL: give one or set HEALTHCHECK_URL")
	}
	return check(url, *timeout)
}

// check GETs url and returns nil for a 2xx answer.
func check(url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	// No proxy from the environment: the check is of this container's own
	// port, and a proxy would dial another address.
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
