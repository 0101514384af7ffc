package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestRunUsageAndConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: \":8080\"\nissuers:\n  - issuer: https://a/\n    jwks_url: x\n"), 0o600)
	noClients := filepath.Join(dir, "noclients.yaml")
	jwks := filepath.Join(dir, "jwks.json")
	os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600)
	os.WriteFile(noClients, []byte("issuers:\n  - issuer: https://a/\n    jwks_file: jwks.json\n"), 0o600)
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		status int
		stderr string
		stdout string
	}{
		{"help", []string{"-h"}, nil, 0, "-revocation.max_staleness", ""},
		{"help lists config flag", []string{"-h"}, nil, 0, "-config", ""},
		{"version", []string{"-version"}, nil, 0, "", "introspectd"},
		{"no config", nil, nil, 2, "no configuration", ""},
		{"unknown flag", []string{"-nope"}, nil, 2, "flag provided but not defined", ""},
		{"stray argument", []string{"-dev", "extra"}, nil, 2, `unexpected argument "extra"`, ""},
		{"unknown key", []string{"-config", bad}, nil, 2, `unknown key "jwks_url" (did you mean "jwks_uri"?)`, ""},
		{"no clients", []string{"-config", noClients}, nil, 2, "no clients configured", ""},
		{"bad env", []string{"-dev"}, map[string]string{"INTROSPECTD_CACHE_MAX_BYTES": "lots"}, 2, "INTROSPECTD_CACHE_MAX_BYTES", ""},
		{"bad flag value", []string{"-dev", "-revocation.max_staleness", "10"}, nil, 2, "-revocation.max_staleness", ""},
		{"config from env var", nil, map[string]string{"INTROSPECTD_CONFIG": bad}, 2, "jwks_url", ""},
		{"check-config dev", []string{"-dev", "-check-config"}, nil, 0, "", "listen:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			env := tc.env
			if env == nil {
				env = map[string]string{}
			}
			// Load also scans the real environment for INTROSPECTD_* names.
			for _, kv := range os.Environ() {
				if strings.HasPrefix(kv, "INTROSPECTD_") {
					t.Skipf("environment has %s", kv)
				}
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			got := run(tc.args, &out, &errb, lookup(env))
			if got != tc.status {
				t.Fatalf("status = %d, want %d\nstderr: %s", got, tc.status, errb.String())
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errb.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, out.String())
			}
		})
	}
}

// TestDevModeProcess builds the binary and runs `introspectd -dev` as a
// user would: it prints a curl command that works, and SIGTERM ends it
// cleanly with status 0.
func TestDevModeProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "introspectd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-dev", "-listen", addr)
	stdout, _ := cmd.StdoutPipe()
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })

	// Read the banner until the curl line.
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var curl string
	timeout := time.After(30 * time.Second)
	for curl == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stdout closed before the curl line; stderr:\n%s", stderr.String())
			}
			if strings.Contains(l, "curl -s -X POST") {
				curl = strings.TrimSpace(l)
			}
		case <-timeout:
			t.Fatal("no curl line within 30s")
		}
	}
	m := regexp.MustCompile(`http://(\S+)/introspect -d token=(\S+)`).FindStringSubmatch(curl)
	if m == nil {
		t.Fatalf("curl line not understood: %s", curl)
	}
	resp, err := http.PostForm("http://"+m[1]+"/introspect", url.Values{"token": {m[2]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), `{"active":true`) {
		t.Fatalf("the printed curl gives %s", body)
	}
	if strings.Contains(stderr.String(), m[2]) {
		t.Error("a token reached the logs")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
}

// lockedBuffer is a bytes.Buffer that the child's stderr copier and the
// test may use at once.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
