package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// maxTokenBytes bounds a token read from a file or stdin.
const maxTokenBytes = 1 << 20

// readToken returns the token given by -token or -token-file; "-" for
// either means stdin. A token read from a file or stdin has surrounding
// white space removed (tokens never contain any), so that the trailing
// newline of "echo" or an editor does not change the token's hash.
func readToken(e *env, set map[string]bool, token, tokenFile string) (string, error) {
	switch {
	case set["token"] && set["token-file"]:
		return "", usagef("-token and -token-file cannot be used together")
	case set["token"] && token == "-", set["token-file"] && tokenFile == "-":
		return readTokenFrom(e.stdin, "stdin", "-token")
	case set["token"]:
		if token == "" {
			return "", usagef("-token is empty")
		}
		return token, nil
	case set["token-file"]:
		if tokenFile == "" {
			return "", usagef("-token-file is empty")
		}
		f, err := os.Open(tokenFile)
		if err != nil {
			return "", fmt.Errorf("-token-file: %w", err)
		}
		defer f.Close()
		return readTokenFrom(f, tokenFile, "-token-file")
	}
	return "", usagef("a token is required: -token T, -token-file FILE, or -token - to read stdin")
}

func readTokenFrom(r io.Reader, what, flagName string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxTokenBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: read %s: %w", flagName, what, err)
	}
	if len(b) > maxTokenBytes {
		return "", fmt.Errorf("%s: %s holds more than %d bytes", flagName, what, maxTokenBytes)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", usagef("%s: no token in %s", flagName, what)
	}
	return string(b), nil
}

// tokenRef names a token in output without revealing it: the first 12 hex
// digits of its SHA-256.
func tokenRef(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}

// tlsConfig returns the client TLS settings of -ca and -insecure-skip-verify.
func tlsConfig(caFile string, insecureSkipVerify bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecureSkipVerify}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca: %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// maxUnix is the latest time accepted, 9999-12-31T23:59:59Z, as revocation
// events accept it.
const maxUnix = 253402300799

// parseTime reads a time flag: unix seconds, RFC 3339, or "now" when
// allowNow. It names the flag in its errors.
func parseTime(flagName, v string, now time.Time, allowNow bool) (int64, error) {
	var t int64
	switch {
	case allowNow && v == "now":
		t = now.Unix()
	case v != "" && strings.Trim(v, "0123456789") == "":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, usagef("-%s: %q is out of range", flagName, v)
		}
		t = n
	default:
		tt, err := time.Parse(time.RFC3339, v)
		if err != nil {
			want := "unix seconds (1767225600) or RFC 3339 (2026-01-01T00:00:00Z)"
			if allowNow {
				want += " or now"
			}
			return 0, usagef("-%s: %q is not %s", flagName, v, want)
		}
		t = tt.Unix()
	}
	if t <= 0 || t > maxUnix {
		return 0, usagef("-%s: %q is out of range (after 1970, before year 10000)", flagName, v)
	}
	return t, nil
}
