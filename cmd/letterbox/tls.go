package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
)

const (
	// Apple clients reject server certificates valid for more than 825
	// days, self-signed or not.
	selfSignedValidity = 825 * 24 * time.Hour
	// A self-signed certificate this close to expiry is replaced at start.
	selfSignedRenewBefore = 30 * 24 * time.Hour
	// How often a handshake may stat the certificate files for a renewal.
	certCheckInterval = 10 * time.Second
)

// newTLSConfig returns the TLS configuration for STARTTLS/STLS and the
// implicit-TLS listeners. Without configured files it uses (and on first run
// creates) a self-signed certificate under data_dir/tls.
func newTLSConfig(cfg *config.Config, log *slog.Logger, now func() time.Time) (*tls.Config, *certLoader, error) {
	certFile, keyFile := cfg.TLS.CertFile, cfg.TLS.KeyFile
	if cfg.TLS.SelfSigned() {
		var created bool
		var err error
		certFile, keyFile, created, err = ensureSelfSigned(filepath.Join(cfg.DataDir, "tls"), cfg.Hostname, now())
		if err != nil {
			return nil, nil, err
		}
		if created {
			log.Info("created self-signed certificate; clients will warn about it", "cert", certFile, "key", keyFile)
		}
	}
	cl := &certLoader{certFile: certFile, keyFile: keyFile, log: log, now: now}
	if err := cl.load(); err != nil {
		return nil, nil, err
	}
	return &tls.Config{
		MinVersion:     cfg.TLS.MinVersion,
		GetCertificate: cl.getCertificate,
	}, cl, nil
}

// certLoader serves a certificate pair and picks up renewals (certbot and
// friends replace the files) without a restart. A renewal that fails to
// load is logged and the old certificate stays in use.
type certLoader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     string // mtimes and sizes of both files when loaded
	lastCheck time.Time
}

func (cl *certLoader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if t := cl.now(); t.Sub(cl.lastCheck) >= certCheckInterval {
		cl.lastCheck = t
		if s, err := cl.fileStamp(); err == nil && s != cl.stamp {
			if err := cl.loadLocked(); err != nil {
				cl.log.Error("TLS certificate changed but does not load; keeping the old one", "err", err)
			} else {
				cl.log.Info("TLS certificate reloaded", "cert", cl.certFile)
			}
		}
	}
	return cl.cert, nil
}

// load (re)reads the pair now, as on SIGHUP.
func (cl *certLoader) load() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.loadLocked()
}

func (cl *certLoader) loadLocked() error {
	stamp, err := cl.fileStamp()
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(cl.certFile, cl.keyFile)
	if err != nil {
		// The error names the file, never its contents.
		return fmt.Errorf("TLS certificate %s / key %s: %w", cl.certFile, cl.keyFile, err)
	}
	cl.cert = &pair
	cl.stamp = stamp
	return nil
}

func (cl *certLoader) fileStamp() (string, error) {
	var s string
	for _, f := range []string{cl.certFile, cl.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("TLS: %w", err)
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s, nil
}

// ensureSelfSigned returns dir/cert.pem and dir/key.pem, creating them when
// missing, unreadable or near expiry.
func ensureSelfSigned(dir, hostname string, now time.Time) (certFile, keyFile string, created bool, err error) {
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if pair, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil {
		if leaf, err := x509.ParseCertificate(pair.Certificate[0]); err == nil && now.Add(selfSignedRenewBefore).Before(leaf.NotAfter) {
			return certFile, keyFile, false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", "", false, fmt.Errorf("self-signed certificate in %s does not load (remove both files to make a new one): %w", dir, err)
	}
	certPEM, keyPEM, err := selfSigned(hostname, now)
	if err != nil {
		return "", "", false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", false, fmt.Errorf("self-signed certificate: %w", err)
	}
	// Key first: a cert without its key would not load, a key alone is
	// simply replaced next time.
	if err := renameio.WriteFile(keyFile, keyPEM, 0o600, renameio.WithStaticPermissions(0o600)); err != nil {
		return "", "", false, fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := renameio.WriteFile(certFile, certPEM, 0o644, renameio.WithStaticPermissions(0o644)); err != nil {
		return "", "", false, fmt.Errorf("self-signed certificate: %w", err)
	}
	return certFile, keyFile, true, nil
}

// selfSigned makes an ECDSA P-256 certificate for the names a local client
// uses: localhost, 127.0.0.1, ::1 and the host name.
func selfSigned(hostname string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"Letterbox self-signed"}},
		NotBefore:             now.Add(-time.Hour), // tolerate clients with a slow clock
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ip := net.ParseIP(hostname); ip != nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if hostname != "" && hostname != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, hostname)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}
