// Package tlsconf makes the TLS configuration of every listener and of
// STARTTLS/STLS: the configured certificate files, re-read when they
// change (certbot and friends replace them), or a self-signed certificate
// made on first start; and a Live configuration that a reload swaps
// without touching open sessions.
package tlsconf

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
)

// CheckInterval is how often a handshake may stat the certificate files
// for a renewal.
const CheckInterval = 10 * time.Second

// Certs is a loaded certificate pair with the TLS settings of the
// configuration. A renewal that does not load is logged, and the old
// certificate stays in use.
type Certs struct {
	CertFile, KeyFile string
	minVersion        uint16
	log               *slog.Logger
	now               func() time.Time

	// cfg is made once: handshakes share it (a new one per handshake
	// would also make crypto/tls set up session ticket keys each time).
	cfg *tls.Config

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     string // mtimes and sizes of both files when loaded
	lastCheck time.Time
}

// Load loads the certificate of cfg: tls.cert_file and tls.key_file, or,
// with neither set, a self-signed certificate under data_dir/tls, made
// when missing or near expiry.
func Load(cfg *config.Config, log *slog.Logger, now func() time.Time) (*Certs, error) {
	certFile, keyFile := cfg.TLS.CertFile, cfg.TLS.KeyFile
	if cfg.TLS.SelfSigned() {
		var created bool
		var err error
		certFile, keyFile, created, err = EnsureSelfSigned(filepath.Join(cfg.DataDir, "tls"), cfg.Hostname, now())
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("created self-signed certificate; clients will warn about it", "cert", certFile, "key", keyFile)
		}
	}
	c := &Certs{CertFile: certFile, KeyFile: keyFile, minVersion: cfg.TLS.MinVersion, log: log, now: now}
	c.cfg = &tls.Config{MinVersion: c.minVersion, GetCertificate: c.getCertificate}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// TLSConfig returns a server configuration that serves the certificate,
// picking up renewed files.
func (c *Certs) TLSConfig() *tls.Config { return c.cfg }

func (c *Certs) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.now(); t.Sub(c.lastCheck) >= CheckInterval {
		c.lastCheck = t
		if s, err := c.fileStamp(); err == nil && s != c.stamp {
			if err := c.reloadLocked(); err != nil {
				c.log.Error("TLS certificate changed but does not load; keeping the old one", "err", err)
			} else {
				c.log.Info("TLS certificate reloaded", "cert", c.CertFile)
			}
		}
	}
	return c.cert, nil
}

// Reload re-reads the pair now, as on SIGHUP.
func (c *Certs) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reloadLocked()
}

func (c *Certs) reloadLocked() error {
	stamp, err := c.fileStamp()
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		// The error names the file, never its contents.
		return fmt.Errorf("TLS certificate %s / key %s: %w", c.CertFile, c.KeyFile, err)
	}
	c.cert = &pair
	c.stamp = stamp
	return nil
}

func (c *Certs) fileStamp() (string, error) {
	var s string
	for _, f := range []string{c.CertFile, c.KeyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("TLS: %w", err)
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}

// Live is the TLS configuration in force. The servers get a fixed
// *tls.Config (ServerConfig) whose GetConfigForClient returns the one in
// force, so a reload changes the next handshake and no other.
type Live struct {
	p atomic.Pointer[Certs]
}

// NewLive returns a Live configuration serving c.
func NewLive(c *Certs) *Live {
	l := &Live{}
	l.Set(c)
	return l
}

// Set puts c in force for the next handshakes.
func (l *Live) Set(c *Certs) { l.p.Store(c) }

// Certs returns the certificate in force.
func (l *Live) Certs() *Certs { return l.p.Load() }

// ServerConfig returns the *tls.Config to give the servers.
func (l *Live) ServerConfig() *tls.Config {
	return &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return l.p.Load().TLSConfig(), nil
		},
	}
}
