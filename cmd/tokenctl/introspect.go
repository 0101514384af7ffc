package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const introspectDoc = `
Asks an introspectd node about a token: POSTs token=<token> to <url>/introspect
(RFC 7662), authenticated with HTTP Basic when -client-id is given, and prints
the JSON answer on stdout.

Exit status: 0 when the token is active, 3 when it is not ({"active":false}),
1 on a transport or HTTP error (the status and body are printed on stderr),
2 on bad usage.

Prefer -token-file or stdin to -token, and TOKENCTL_CLIENT_SECRET to
-client-secret: other users of the machine can read command lines.
`

const introspectExamples = `  TOKENCTL_CLIENT_SECRET=s3cret tokenctl introspect -url http://127.0.0.1:8080 -client-id gateway -token-file tok.jwt
  tokenctl mint -dev-server http://127.0.0.1:8080 | tokenctl introspect -url http://127.0.0.1:8080 -token -
  tokenctl introspect -url https://introspect.internal -ca ca.pem -client-id gateway -token "$TOKEN"
`

// maxAnswerBytes bounds the answer read from a server.
const maxAnswerBytes = 1 << 20

func runIntrospect(e *env, args []string) error {
	f := newFlags("introspect", "-url URL [-client-id ID] (-token T | -token-file FILE | -token -) [flags]", introspectDoc, introspectExamples)
	base := f.String("url", "", "base `URL` of the introspectd node; /introspect is appended, e.g. -url http://127.0.0.1:8080")
	clientID := f.String("client-id", "", "client `ID` for HTTP Basic authentication, a clients[].id of the config, e.g. -client-id gateway")
	secret := f.String("client-secret", "", "client `secret` for -client-id (default: $TOKENCTL_CLIENT_SECRET), e.g. -client-secret s3cret")
	token := f.String("token", "", "the `token` to ask about; - reads it from stdin, e.g. -token eyJhbGciOi...")
	tokenFile := f.String("token-file", "", "read the token from `FILE` (surrounding white space removed); - is stdin, e.g. -token-file tok.jwt")
	ca := f.String("ca", "", "PEM `FILE` of the CA certificates to trust for an https -url, e.g. -ca ca.pem")
	insecure := f.Bool("insecure-skip-verify", false, "do not check the server's TLS certificate (INSECURE: testing only)")
	timeout := f.Duration("timeout", 10*time.Second, "give up after this `duration`, e.g. -timeout 3s")
	if err := f.parse(e, args); err != nil {
		return err
	}
	set := f.set()

	endpoint, err := introspectURL(*base)
	if err != nil {
		return err
	}
	if !set["client-secret"] {
		*secret = e.getenv("TOKENCTL_CLIENT_SECRET")
	}
	switch {
	case *timeout <= 0:
		return usagef("-timeout: %s is not positive", *timeout)
	case strings.Contains(*clientID, ":"):
		// RFC 7617: the user-id of Basic authentication cannot hold a colon.
		return usagef("-client-id cannot contain ':'")
	case set["client-secret"] && *clientID == "":
		return usagef("-client-secret needs -client-id")
	case *clientID != "" && *secret == "":
		return usagef("-client-id needs a secret: -client-secret or $TOKENCTL_CLIENT_SECRET")
	}
	tok, err := readToken(e, set, *token, *tokenFile)
	if err != nil {
		return err
	}
	tlsCfg, err := tlsConfig(*ca, *insecure)
	if err != nil {
		return err
	}
	if *insecure {
		fmt.Fprintln(e.stderr, "tokenctl introspect: warning: -insecure-skip-verify: the server's certificate is not checked")
	}

	form := url.Values{"token": {tok}}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if *clientID != "" {
		req.SetBasicAuth(*clientID, *secret)
	}
	client := &http.Client{
		Timeout:   *timeout,
		Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment},
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error holds the URL, never the body, so the token stays out.
		return err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only body
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}

	if resp.StatusCode != http.StatusOK {
		msg := fmt.Sprintf("%s answered %s", endpoint, resp.Status)
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			msg += " (Retry-After: " + ra + ")"
		}
		if b := strings.TrimSpace(string(body)); b != "" {
			msg += ": " + b
		}
		return fmt.Errorf("%s", msg)
	}
	var answer struct {
		Active *bool `json:"active"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Active == nil {
		return fmt.Errorf("%s answered 200 without a JSON object holding \"active\": %.200q", endpoint, body)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		return fmt.Errorf("%s: %w", endpoint, err)
	}
	pretty.WriteByte('\n')
	if _, err := e.stdout.Write(pretty.Bytes()); err != nil {
		return err
	}
	if !*answer.Active {
		return errInactive
	}
	return nil
}

// introspectURL returns the endpoint for the -url base: base + /introspect,
// or base itself when it already ends in /introspect.
func introspectURL(base string) (string, error) {
	if base == "" {
		return "", usagef("-url is required, e.g. -url http://127.0.0.1:8080")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usagef("-url: want an http or https base URL like http://127.0.0.1:8080")
	}
	if u.User != nil {
		return "", usagef("-url: put credentials in -client-id and -client-secret, not in the URL")
	}
	if !strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/introspect") {
		u = u.JoinPath("introspect")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u.String(), nil
}
