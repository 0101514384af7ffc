package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEDocumentsEveryKey keeps the README's configuration reference
// complete: each key, with its environment variable, must be in it.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, k := range Keys() {
		if !strings.Contains(readme, "`"+k.Path+"`") {
			t.Errorf("README.md does not document key %s", k.Path)
		}
		if k.Env != "" && !strings.Contains(readme, k.Env) {
			t.Errorf("README.md does not name %s", k.Env)
		}
	}
}
