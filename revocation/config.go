package revocation

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by [Start] to a zero [Config] field.
const (
	DefaultSubject      = "introspect.revocations"
	DefaultStream       = "INTROSPECT_REVOCATIONS"
	DefaultMaxStaleness = 60 * time.Second

	// DefaultPublishTimeout bounds [Node.Publish] when its context has no
	// deadline.
	DefaultPublishTimeout = 5 * time.Second

	// StreamAgeMargin is added to MaxTokenLifetime+Leeway for the MaxAge of
	// the stream that [Start] creates, so that no event ages out while an
	// entry it made could still matter.
	StreamAgeMargin = time.Hour

	// PruneInterval is how often a [Node] prunes its deny-list.
	PruneInterval = 30 * time.Second

	minHeartbeatInterval = 250 * time.Millisecond
	defaultEmbeddedHost  = "127.0.0.1"
)

// Config configures a [Node]. The zero value runs an embedded nats-server
// with a temporary store and the defaults above.
type Config struct {
	// URLs are the NATS servers to connect to. Empty: run an embedded
	// nats-server in-process with JetStream, listening on loopback only.
	URLs []string

	// EmbeddedListen is the host:port of the embedded server. The host MUST
	// be a loopback address. "" means 127.0.0.1 on a random port.
	EmbeddedListen string

	// DataDir is the JetStream store directory of the embedded server. ""
	// means a temporary directory that [Node.Close] removes, so revocations
	// then live only as long as the process.
	DataDir string

	// Subject is the subject prefix events are published under; the stream
	// captures "<Subject>.>". "" means [DefaultSubject].
	Subject string

	// Stream is the JetStream stream name. "" means [DefaultStream].
	Stream string

	// Replicas is the number of stream replicas used when the stream is
	// created (0 means 1). An existing stream is used as it is.
	Replicas int

	// Authentication and TLS for external servers. At most one of
	// CredsFile, NKeySeedFile, User/Password and Token may be set. CAFile
	// adds trusted roots; CertFile and KeyFile give a client certificate.
	CredsFile, NKeySeedFile, User, Password, Token string
	CAFile, CertFile, KeyFile                      string

	// MaxTokenLifetime and Leeway size the MaxAge of a stream that [Start]
	// creates (their sum plus [StreamAgeMargin]); pass the same values as
	// to the [DenyList]. 0 MaxTokenLifetime means [DefaultMaxTokenLifetime].
	MaxTokenLifetime, Leeway time.Duration

	// MaxStaleness is how long the node may go without successful contact
	// with JetStream before [Node.Stale] reports true and [Node.Ready]
	// false. 0 means [DefaultMaxStaleness].
	MaxStaleness time.Duration

	// HeartbeatInterval is how often the node probes JetStream (a stream
	// info request) and how often the client pings the server. 0 means
	// MaxStaleness/6, at least 250ms.
	HeartbeatInterval time.Duration

	// Logger receives the node's logs; nil means slog.Default().
	Logger *slog.Logger
}

// withDefaults returns c with the defaults applied.
func (c Config) withDefaults() Config {
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxTokenLifetime == 0 {
		c.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if c.MaxStaleness == 0 {
		c.MaxStaleness = DefaultMaxStaleness
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = max(c.MaxStaleness/6, minHeartbeatInterval)
	}
	if c.EmbeddedListen == "" {
		c.EmbeddedListen = net.JoinHostPort(defaultEmbeddedHost, "-1")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first problem of c after defaults, naming the field.
// [Start] calls it.
func (c Config) Validate() error {
	c = c.withDefaults()
	if !validSubject(c.Subject) {
		return errors.New("revocation: Subject: not a literal NATS subject")
	}
	if !validStreamName(c.Stream) {
		return errors.New("revocation: Stream: not a valid stream name")
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return errors.New("revocation: Replicas: must be between 1 and 5")
	}
	if c.MaxTokenLifetime < 0 || c.Leeway < 0 {
		return errors.New("revocation: MaxTokenLifetime and Leeway must not be negative")
	}
	if c.MaxStaleness < 0 {
		return errors.New("revocation: MaxStaleness: must not be negative")
	}
	if c.HeartbeatInterval < minHeartbeatInterval || c.HeartbeatInterval >= c.MaxStaleness {
		return fmt.Errorf("revocation: HeartbeatInterval: must be at least %s and below MaxStaleness", minHeartbeatInterval)
	}
	auth := 0
	for _, set := range []bool{c.CredsFile != "", c.NKeySeedFile != "", c.User != "" || c.Password != "", c.Token != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		return errors.New("revocation: set at most one of CredsFile, NKeySeedFile, User/Password and Token")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("revocation: CertFile and KeyFile go together")
	}
	if len(c.URLs) == 0 {
		host, port, err := net.SplitHostPort(c.EmbeddedListen)
		if err != nil {
			return fmt.Errorf("revocation: EmbeddedListen: %w", err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < -1 || p > 65535 {
			return errors.New("revocation: EmbeddedListen: bad port")
		}
		if !isLoopback(host) {
			return errors.New("revocation: EmbeddedListen: the embedded server listens on loopback only")
		}
		if c.Replicas > 1 {
			return errors.New("revocation: Replicas: the embedded server is a single node")
		}
		if auth > 0 || c.CAFile != "" || c.CertFile != "" {
			return errors.New("revocation: authentication and TLS options need URLs (an external server)")
		}
	}
	for _, u := range c.URLs {
		if strings.TrimSpace(u) == "" {
			return errors.New("revocation: URLs: empty URL")
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validSubject(s string) bool {
	if s == "" {
		return false
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n*>") {
			return false
		}
	}
	return true
}

func validStreamName(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n.*>/\\")
}
