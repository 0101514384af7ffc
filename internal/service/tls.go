package service

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// certReloader serves the certificate from files that may be replaced
// while running (cert-manager, ACME clients): it notices a change of the
// files' modification times at most once a second, and reloads on demand
// (SIGHUP). A broken new pair is logged and the old one kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	cert      atomic.Pointer[tls.Certificate]
	lastCheck atomic.Int64 // unix nanos

	mu      sync.Mutex // guards modTime
	modTime time.Time
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked()
}

func (r *certReloader) reloadLocked() error {
	mt, err := r.latestModTime()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	r.cert.Store(&c)
	r.modTime = mt
	r.log.Info("tls certificate loaded", "cert_file", r.certFile)
	return nil
}

func (r *certReloader) latestModTime() (time.Time, error) {
	var latest time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return time.Time{}, err
		}
		if fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
	}
	return latest, nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := time.Now().UnixNano()
	last := r.lastCheck.Load()
	if now-last > int64(time.Second) && r.lastCheck.CompareAndSwap(last, now) {
		r.mu.Lock()
		if mt, err := r.latestModTime(); err == nil && !mt.Equal(r.modTime) {
			if err := r.reloadLocked(); err != nil {
				r.log.Error("tls certificate reload failed; keeping the old one", "err", err)
			}
		}
		r.mu.Unlock()
	}
	return r.cert.Load(), nil
}
