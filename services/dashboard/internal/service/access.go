package service

import (
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// maxLoggedPath bounds the path in an access log line.
const maxLoggedPath = 256

// accessLog logs one line per answered request: method, path, status,
// bytes of body written and duration. The path is logged without its
// query, which may carry a token; a URL's fragment never reaches a server.
func accessLog(log zerolog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &recordingWriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		path := r.URL.Path
		if len(path) > maxLoggedPath {
			path = path[:maxLoggedPath] + "…"
		}
		method := r.Method
		if len(method) > 16 {
			method = method[:16] + "…"
		}
		log.Info().Str("method", method).Str("path", path).Int("status", rw.status()).
			Int64("bytes", rw.bytes).Dur("duration_ms", time.Since(start)).Msg("request")
	})
}

// recordingWriter remembers the status code and counts the body bytes of
// an answer.
type recordingWriter struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *recordingWriter) status() int {
	if w.code == 0 {
		return http.StatusOK // nothing written: net/http sends 200
	}
	return w.code
}
