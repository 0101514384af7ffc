package config

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzLoad(f *testing.F) {
	f.Add([]byte(baseYAML))
	f.Add([]byte(""))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("issuers: [{issuer: a, algorithms: [none, HS256], hmac_secret: x, leeway: 5}]\n"))
	f.Add([]byte("a: &a [*a]\nissuers: *a\n"))
	f.Add([]byte("claims_headers: {a: X-A, b: [1]}\nroutes: [{path_prefix: x, methods: [get]}]\n"))
	f.Add([]byte("nats: {url: 'nats://a:1,%zz', replicas: 99999999999999999999}\nhttp: {read_timeout: 1.5}\n"))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), []byte("{}"), 0o600); err != nil {
		f.Fatal(err)
	}
	// One file per fuzz worker process, rewritten each time: a fresh
	// t.TempDir per input made the target slow enough for the fuzzing
	// coordinator to time out.
	p := filepath.Join(dir, "config.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p, func(string) (string, bool) { return "", false }, nil)
		if err == nil {
			_ = c.String()
			return
		}
		for _, e := range configErrors(t, err) {
			_ = e.Error()
		}
	})
}
