// Command introspectd is an OAuth 2.0 token introspection service (RFC 7662)
// that verifies JWT access tokens once and answers from a cache, with
// revocation spread over NATS JetStream.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/introspectd/introspectd/internal/config"
	"github.com/introspectd/introspectd/internal/devissuer"
	"github.com/introspectd/introspectd/internal/service"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

const usageHead = `introspectd: OAuth 2.0 token introspection (RFC 7662) from a cache of verified JWTs.

Usage:
  introspectd -config FILE [flags]   run with a YAML config
  introspectd -dev [flags]           try it out: ephemeral issuer, embedded NATS, no caller credentials

Every config key can be given as a flag (below) or as an environment variable
INTROSPECTD_<KEY> (nested keys joined by _, upper case); a flag beats the
environment, which beats the file. Lists (issuers, clients, routes) are file-only.

Flags:
`

// run returns the exit status: 0 after a clean shutdown, 1 on a runtime
// failure, 2 on bad flags or configuration.
func run(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	fs := flag.NewFlagSet("introspectd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config `file` (or INTROSPECTD_CONFIG)")
	dev := fs.Bool("dev", false, "dev mode: ephemeral signing key and issuer, embedded NATS in a temp dir, callers need no credentials; prints a curl command to try")
	checkOnly := fs.Bool("check-config", false, "validate the configuration, print it with secrets redacted, and exit")
	version := fs.Bool("version", false, "print the version and exit")
	config.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "introspectd: unexpected argument %q (see -h)\n", fs.Arg(0))
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, "introspectd", service.Version)
		return 0
	}
	path := *configPath
	if path == "" {
		path, _ = lookupEnv(config.EnvConfig)
	}
	if path == "" && !*dev {
		fmt.Fprintln(stderr, "introspectd: no configuration: use -config FILE, or -dev to try it out (see -h)")
		return 2
	}
	cfg, err := config.LoadWith(path, lookupEnv, fs, config.LoadOptions{Dev: *dev})
	if err != nil {
		fmt.Fprintf(stderr, "introspectd: configuration:\n%s\n", indent(err.Error()))
		return 2
	}
	if *checkOnly {
		fmt.Fprint(stdout, cfg.String())
		return 0
	}
	_, envFormat := lookupEnv(config.EnvPrefix + "LOG_FORMAT")
	if *dev && path == "" && !envFormat && !isSet(fs, "log_format") {
		cfg.LogFormat = "text" // dev mode is read by people, not log pipelines
	}
	log := newLogger(cfg, stderr)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	opts := service.Options{Logger: log}
	var d *devissuer.Dev
	if *dev {
		if d, err = devissuer.New(); err != nil {
			fmt.Fprintf(stderr, "introspectd: dev issuer: %v\n", err)
			return 1
		}
		opts.Issuers = append(opts.Issuers, d.IssuerConfig())
		opts.Extra = d.Handler
		if cfg.NATS.URL == "" && !isSet(fs, "nats.data_dir") {
			dir, err := os.MkdirTemp("", "introspectd-dev-")
			if err != nil {
				fmt.Fprintf(stderr, "introspectd: %v\n", err)
				return 1
			}
			defer os.RemoveAll(dir)
			cfg.NATS.DataDir = filepath.Join(dir, "nats")
		}
	}
	svc, err := service.Start(ctx, cfg, opts)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if d != nil {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := svc.WaitReady(wctx); err != nil {
			log.Warn("dev mode: still not ready", "err", err)
		}
		cancel()
		printDevHelp(stdout, svc, d)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if err := svc.ReloadTLS(); err != nil {
				log.Error("tls reload failed", "err", err)
			}
			continue
		case err := <-svc.Done():
			log.Error("server stopped", "err", err)
			return 1
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down", "timeout", cfg.HTTP.ShutdownTimeout.D())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout.D())
	defer cancel()
	if err := svc.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func printDevHelp(w io.Writer, svc *service.Service, d *devissuer.Dev) {
	tok, err := d.Mint(devissuer.Claims{Sub: "alice", Scope: "read write", ClientID: "dev-client"})
	if err != nil {
		return
	}
	addr := svc.Addr()
	fmt.Fprintf(w, `
introspectd is running in dev mode (do not use in production).
  issuer:     %s   (ES256 key made at start, gone at exit)
  NATS:       %s   (embedded, JetStream)
  callers:    no credentials needed

Try it:
  %s

More tokens:   curl -s 'http://%s/dev/token?sub=bob&scope=admin'
Revoke it:     go run ./cmd/tokenctl revoke -nats %s -token "$TOKEN"
Health:        curl -s http://%s/readyz
Metrics:       curl -s http://%s/metrics

`, devissuer.Issuer, svc.NATSURL(), devissuer.Curl(addr, tok), devissuer.Host(addr), svc.NATSURL(), devissuer.Host(addr), devissuer.Host(addr))
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
