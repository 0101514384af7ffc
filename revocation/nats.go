package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// embeddedReadyTimeout bounds how long [Start] waits for the embedded
// server, which recovers its JetStream store before it listens.
const embeddedReadyTimeout = 60 * time.Second

// startEmbedded runs a nats-server in-process: JetStream on, loopback only,
// store under dir and an fsync on every write. NATS syncs every two minutes
// by default, and acknowledged writes were lost that way in a published
// Jepsen analysis; a revocation that was acknowledged must survive a crash.
func startEmbedded(ctx context.Context, cfg Config, dir string, log *slog.Logger) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.EmbeddedListen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: port: %w", err)
	}
	opts := &server.Options{
		ServerName:             "introspectd-embedded",
		Host:                   host,
		Port:                   port,
		JetStream:              true,
		StoreDir:               dir,
		SyncAlways:             true,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	fatal := make(chan string, 1)
	s.SetLoggerV2(serverLogger{l: log.With("component", "nats-server"), fatal: fatal}, false, false, false)
	s.Start()

	// The server reports a failure to listen only through its logger, so
	// wait for either.
	wait := embeddedReadyTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	deadline := time.Now().Add(wait)
	for !s.ReadyForConnections(50 * time.Millisecond) {
		var failure string
		select {
		case failure = <-fatal:
		case <-ctx.Done():
			failure = ctx.Err().Error()
		default:
			if time.Now().After(deadline) {
				failure = fmt.Sprintf("not listening on %s after %s", cfg.EmbeddedListen, wait)
			}
		}
		if failure != "" {
			s.Shutdown()
			s.WaitForShutdown()
			return nil, fmt.Errorf("embedded nats-server: %s", failure)
		}
	}
	if !s.JetStreamEnabled() {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, errors.New("embedded nats-server: JetStream did not start")
	}
	return s, nil
}

// serverLogger routes nats-server logs to slog. Notices are chatty start-up
// and shutdown details, so they go to Debug. The first fatal error is also
// sent on fatal, if not nil.
type serverLogger struct {
	l     *slog.Logger
	fatal chan<- string
}

func (s serverLogger) logf(level slog.Level, format string, v []any) {
	if !s.l.Enabled(context.Background(), level) {
		return
	}
	s.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
}

func (s serverLogger) Noticef(format string, v ...any) { s.logf(slog.LevelDebug, format, v) }
func (s serverLogger) Warnf(format string, v ...any)   { s.logf(slog.LevelWarn, format, v) }
func (s serverLogger) Fatalf(format string, v ...any) {
	s.logf(slog.LevelError, format, v)
	if s.fatal != nil {
		select {
		case s.fatal <- fmt.Sprintf(format, v...):
		default:
		}
	}
}
func (s serverLogger) Errorf(format string, v ...any) { s.logf(slog.LevelError, format, v) }
func (s serverLogger) Debugf(string, ...any)          {}
func (s serverLogger) Tracef(string, ...any)          {}

var _ server.Logger = serverLogger{}

// connect opens the node's connection. It returns at once even when no
// server can be reached: the client keeps trying in the background
// (RetryOnFailedConnect, unlimited reconnects, also after auth errors, so
// that fixed credentials on the server side heal the node).
//
// The client's default ping interval is two minutes, far too slow to notice
// a black-holed connection within MaxStaleness, so the node pings every
// HeartbeatInterval and gives up after two unanswered pings.
func (n *Node) connect() (*nats.Conn, error) {
	cfg := n.cfg
	hb := cfg.HeartbeatInterval
	opts := []nats.Option{
		nats.Name("introspectd-revocation"),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.IgnoreAuthErrorAbort(),
		nats.ReconnectWait(min(hb, time.Second)),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.PingInterval(hb),
		nats.MaxPingsOutstanding(2),
		nats.Timeout(min(max(2*hb, time.Second), 5*time.Second)),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if n.closed.Load() {
				return
			}
			n.connectionChanged()
			n.log.Warn("revocation: disconnected from NATS", "error", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			n.connectionChanged()
			n.log.Info("revocation: reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			n.log.Info("revocation: connected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			if !n.closed.Load() {
				n.log.Error("revocation: NATS connection closed for good; the node stays not ready")
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			n.log.Warn("revocation: NATS error", "error", err)
		}),
	}
	if n.srv != nil {
		opts = append(opts, nats.InProcessServer(n.srv))
	}
	switch {
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("NKeySeedFile: %w", err)
		}
		opts = append(opts, o)
	case cfg.User != "" || cfg.Password != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}

	url := strings.Join(cfg.URLs, ",")
	if n.srv != nil {
		url = n.srv.ClientURL()
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	return nc, nil
}
