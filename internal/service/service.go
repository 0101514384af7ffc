// Package service assembles introspectd from its parts: configuration in,
// a running HTTP server with verifier, cache, deny-list, NATS consumer and
// metrics out. cmd/introspectd and the end-to-end tests both use it.
package service

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/introspectd/introspectd/internal/config"
	"github.com/introspectd/introspectd/internal/deadline"
	"github.com/introspectd/introspectd/internal/metrics"
	"github.com/introspectd/introspectd/internal/onread"
	"github.com/introspectd/introspectd/introspect"
	"github.com/introspectd/introspectd/revocation"
)

// Version is set at build time with -ldflags "-X ...service.Version=…".
var Version = "dev"

// Options are the settings that do not come from the config file.
type Options struct {
	Logger *slog.Logger
	// Issuers are added to the configured ones (dev mode's ephemeral issuer).
	Issuers []introspect.IssuerConfig
	// Extra serves paths the API does not know (dev mode's /dev/token).
	Extra fasthttp.RequestHandler
}

// Service is one running introspectd node.
type Service struct {
	cfg     *config.Config
	log     *slog.Logger
	metrics *metrics.Metrics
	checker *introspect.Checker
	handler *introspect.Handler
	deny    *revocation.DenyList
	node    *revocation.Node
	srv     *fasthttp.Server
	ln      net.Listener
	certs   *certReloader
	pprof   *http.Server
	cancel  context.CancelFunc
	served  chan error

	ready func() (bool, string)

	// replayed turns true once the revocation history was first replayed.
	replayed atomic.Bool
}

// Start builds every part from cfg and starts serving. It returns once the
// listener is bound; keys and revocation history load in the background
// and /readyz says when they are in.
func Start(ctx context.Context, cfg *config.Config, opts Options) (*Service, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, log: log, served: make(chan error, 1)}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.build(ctx, runCtx, cfg, opts); err != nil {
		s.close()
		return nil, err
	}
	if err := s.listen(); err != nil {
		s.close()
		return nil, err
	}
	go func() { s.served <- s.srv.Serve(s.ln) }()
	log.Info("introspectd serving", "addr", s.Addr(), "tls", s.certs != nil, "issuers", len(cfg.Issuers)+len(opts.Issuers),
		"clients", len(cfg.Clients), "version", Version)
	return s, nil
}

// build assembles the parts. startCtx bounds only start-up work (the NATS
// connection attempt); runCtx lives until Shutdown and carries the
// background loops (JWKS refresh, replay watcher).
func (s *Service) build(startCtx, ctx context.Context, cfg *config.Config, opts Options) error {
	issuers, err := issuerConfigs(cfg)
	if err != nil {
		return err
	}
	issuers = append(issuers, opts.Issuers...)
	claimNames, claimHeaders := claimsHeaders(cfg.ClaimsHeaders)
	v, err := introspect.NewVerifier(issuers, introspect.VerifierOptions{
		ClaimHeaders: claimNames, Logger: s.log.With("component", "verifier"),
	})
	if err != nil {
		return err
	}
	if err := v.Start(ctx); err != nil {
		return err
	}

	leeway := time.Duration(0)
	for _, is := range issuers {
		leeway = max(leeway, is.Leeway)
	}
	s.deny = revocation.NewDenyList(revocation.DenyListConfig{
		Leeway: leeway, MaxTokenLifetime: cfg.Revocation.MaxTokenLifetime.D(),
	})
	s.checker, err = introspect.NewChecker(v, introspect.CheckerConfig{
		MaxBytes: cfg.Cache.MaxBytes, NegativeTTL: cfg.Cache.NegativeTTL.D(), DenyList: s.deny,
	})
	if err != nil {
		return err
	}

	s.node, err = revocation.Start(startCtx, natsConfig(cfg, leeway, s.log), s.deny)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}

	// Every unmet condition is named, not just the first: an operator
	// looking at a node that is not ready wants the whole list at once.
	ready := func() (bool, string) {
		var why []string
		if ok, r := v.Ready(); !ok {
			why = append(why, r)
		}
		if ok, r := s.node.Ready(); !ok {
			why = append(why, r)
		} else if !s.replayed.Load() {
			why = append(why, "revocation: history replayed, not yet answering")
		}
		return len(why) == 0, strings.Join(why, "; ")
	}
	s.ready = ready
	s.metrics = metrics.New(prometheus.NewRegistry(), Version)
	s.metrics.RegisterChecker(s.checker)
	s.metrics.RegisterRevocation(s.node, s.deny)
	s.metrics.Ready(ready)

	clients, err := clientConfigs(cfg.Clients)
	if err != nil {
		return err
	}
	routes := make([]introspect.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		routes[i] = introspect.Route{PathPrefix: r.PathPrefix, Methods: r.Methods, Scopes: r.Scopes}
	}
	// Until the revocation history was replayed once, the deny-list may
	// miss revocations, so no token can be answered (a restarted node must
	// never call a revoked token active). Later, a stale history stops
	// answers only when the operator chose to fail closed.
	go s.watchReplayed(ctx)
	failClosed := cfg.Revocation.FailClosed
	unavailable := func() bool {
		return !s.replayed.Load() || failClosed && s.node.Stale()
	}
	h := introspect.NewHandler(introspect.HandlerConfig{
		Checker:        s.checker,
		Clients:        clients,
		AllowAnonymous: cfg.Dev,
		Routes:         routes,
		ClaimHeaders:   claimHeaders,
		Publisher:      s.node,
		Ready:          ready,
		Unavailable:    unavailable,
		Observer:       s.metrics,
		Metrics:        s.metrics.Handler(),
		Logger:         s.log.With("component", "http"),
	})
	s.handler = h
	handler := h.ServeHTTP
	if opts.Extra != nil {
		handler = func(ctx *fasthttp.RequestCtx) {
			if strings.HasPrefix(string(ctx.Path()), "/dev/") {
				opts.Extra(ctx)
				return
			}
			h.ServeHTTP(ctx)
		}
	}
	hc := cfg.HTTP
	s.srv = &fasthttp.Server{
		Handler:      handler,
		ErrorHandler: introspect.ErrorHandler,
		Name:         "introspectd",
		// The listener enforces the read, write and idle timeouts on a
		// coarse clock (see listen): with them at zero here fasthttp makes
		// no time.Now and deadline calls per request.
		ReadTimeout:                  0,
		WriteTimeout:                 0,
		IdleTimeout:                  0,
		MaxRequestBodySize:           hc.MaxBodyBytes,
		ReadBufferSize:               hc.MaxHeaderBytes,
		Concurrency:                  hc.Concurrency,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{s.log},
	}
	if cfg.PprofListen != "" {
		s.startPprof(cfg.PprofListen)
	}
	return nil
}

func (s *Service) watchReplayed(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if ok, _ := s.node.Ready(); ok {
			s.replayed.Store(true)
			s.log.Info("revocation history replayed; answering")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The HTTP timeouts are enforced by the listener, not fasthttp (whose
	// own are zero). Under TLS it must sit both below TLS (which must never
	// see the early timeouts of its lazy deadlines) and above it (only
	// application writes count as responses), hence NewTLSListener.
	hc := s.cfg.HTTP
	to := deadline.Timeouts{Read: hc.ReadTimeout.D(), Write: hc.WriteTimeout.D(), Idle: hc.IdleTimeout.D()}
	if s.cfg.TLS.CertFile != "" {
		s.certs, err = newCertReloader(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile, s.log)
		if err != nil {
			_ = ln.Close() // never served: nothing in flight
			return err
		}
		ln = deadline.NewTLSListener(ln, to, &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certs.get,
		})
	} else {
		ln = deadline.NewListener(ln, to)
	}
	// Each chunk read (above TLS: plaintext) is shown to the handler, which
	// starts loading the token's cache memory while fasthttp parses the
	// request.
	s.ln = onread.NewListener(ln, s.handler.Prefetch)
	return nil
}

// WaitReady blocks until the node is ready (what /readyz reports) or ctx
// ends, and then returns the last reason it was not.
func (s *Service) WaitReady(ctx context.Context) error {
	for {
		ok, why := s.ready()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %s", why)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Addr is the address the API listens on.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// NATSURL is the embedded NATS server's client URL ("" with an external one).
func (s *Service) NATSURL() string { return s.node.ClientURL() }

// ReloadTLS rereads the certificate files (on SIGHUP).
func (s *Service) ReloadTLS() error {
	if s.certs == nil {
		return nil
	}
	return s.certs.reload()
}

// Done is closed when the server stops serving on its own.
func (s *Service) Done() <-chan error { return s.served }

// Shutdown stops accepting requests, lets those in flight finish within
// ctx, then stops the NATS consumer and the caches.
func (s *Service) Shutdown(ctx context.Context) error {
	err := s.srv.ShutdownWithContext(ctx)
	s.close()
	return err
}

func (s *Service) close() {
	if s.pprof != nil {
		_ = s.pprof.Close() // loopback debugging listener; nothing to save
	}
	if s.node != nil {
		if err := s.node.Close(); err != nil {
			s.log.Warn("closing NATS", "err", err)
		}
	}
	if s.checker != nil {
		s.checker.Close()
	}
	if s.cancel != nil {
		s.cancel()
	}
}

func (s *Service) startPprof(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.pprof = &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.pprof.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("pprof listener", "err", err)
		}
	}()
	s.log.Info("pprof listening", "addr", addr)
}

func issuerConfigs(cfg *config.Config) ([]introspect.IssuerConfig, error) {
	out := make([]introspect.IssuerConfig, 0, len(cfg.Issuers))
	for i, is := range cfg.Issuers {
		secret, err := is.HMACKey()
		if err != nil {
			return nil, fmt.Errorf("issuers[%d].hmac_secret_file: %w", i, err)
		}
		out = append(out, introspect.IssuerConfig{
			Issuer: is.Issuer, JWKSFile: is.JWKSFile, JWKSURI: is.JWKSURI, Discovery: is.Discovery,
			HMACSecret: secret, Audiences: is.Audiences, Algorithms: is.Algorithms, Typ: is.Typ,
			Leeway: is.Leeway.D(), RefreshInterval: is.RefreshInterval.D(),
			RefetchCooldown: is.RefetchCooldown.D(), FetchTimeout: is.FetchTimeout.D(),
		})
	}
	return out, nil
}

func clientConfigs(cs []config.Client) ([]introspect.Client, error) {
	out := make([]introspect.Client, 0, len(cs))
	for i, c := range cs {
		cl := introspect.Client{ID: c.ID, Audiences: c.Audiences}
		if c.Secret != "" {
			cl.SecretSHA256 = sha256.Sum256([]byte(c.Secret))
		} else {
			b, err := hex.DecodeString(c.SecretSHA256)
			if err != nil || len(b) != 32 {
				return nil, fmt.Errorf("clients[%d].secret_sha256: want 64 hex digits", i)
			}
			copy(cl.SecretSHA256[:], b)
		}
		out = append(out, cl)
	}
	return out, nil
}

// claimsHeaders turns the claim → header map into two aligned lists, in a
// stable order.
func claimsHeaders(m map[string]string) (claims, headers []string) {
	for c := range m {
		claims = append(claims, c)
	}
	sort.Strings(claims)
	for _, c := range claims {
		headers = append(headers, m[c])
	}
	return claims, headers
}

func natsConfig(cfg *config.Config, leeway time.Duration, log *slog.Logger) revocation.Config {
	n := cfg.NATS
	var urls []string
	for _, u := range strings.Split(n.URL, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return revocation.Config{
		URLs: urls, EmbeddedListen: n.EmbeddedListen, DataDir: n.DataDir,
		Subject: n.Subject, Stream: n.Stream, Replicas: n.Replicas,
		CredsFile: n.CredsFile, NKeySeedFile: n.NKeySeedFile, User: n.User, Password: n.Password, Token: n.Token,
		CAFile: n.CAFile, CertFile: n.CertFile, KeyFile: n.KeyFile,
		MaxTokenLifetime: cfg.Revocation.MaxTokenLifetime.D(), Leeway: leeway,
		MaxStaleness: cfg.Revocation.MaxStaleness.D(),
		Logger:       log,
	}
}

// fasthttpLogger routes fasthttp's own messages (connection errors) to
// slog. Only the format is kept: fasthttp quotes the bytes of a request it
// could not parse, which may hold an Authorization header.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, _ ...any) {
	l.log.Debug("fasthttp connection error", "format", format)
}
