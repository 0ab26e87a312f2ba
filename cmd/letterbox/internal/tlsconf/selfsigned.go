package tlsconf

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
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/flock"
)

const (
	// Apple clients reject server certificates valid for more than 825
	// days, self-signed or not.
	selfSignedValidity = 825 * 24 * time.Hour
	// A self-signed certificate this close to expiry is replaced at start.
	selfSignedRenewBefore = 30 * 24 * time.Hour
)

// EnsureSelfSigned returns dir/cert.pem and dir/key.pem, creating them
// when missing or near expiry. Processes that start at once on a new data
// directory take turns (a lock file in dir), so they end up with one
// matching pair.
func EnsureSelfSigned(dir, hostname string, now time.Time) (certFile, keyFile string, created bool, err error) {
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", false, fmt.Errorf("self-signed certificate: %w", err)
	}
	unlock, err := flock.Lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", "", false, fmt.Errorf("self-signed certificate: %w", err)
	}
	defer unlock()
	// Under the lock: another process may be between writing the key and
	// the certificate, or may have made the pair while this one waited.
	if usable, err := selfSignedUsable(certFile, keyFile, now); usable || err != nil {
		return certFile, keyFile, false, err
	}
	certPEM, keyPEM, err := SelfSigned(hostname, now)
	if err != nil {
		return "", "", false, err
	}
	// Key first: a cert without its key would not load, a key alone is
	// simply replaced next time.
	if err := renameio.WriteFile(keyFile, keyPEM, 0o600, renameio.WithStaticPermissions(0o600), renameio.WithTempDir(filepath.Dir(keyFile))); err != nil {
		return "", "", false, fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := renameio.WriteFile(certFile, certPEM, 0o644, renameio.WithStaticPermissions(0o644), renameio.WithTempDir(filepath.Dir(certFile))); err != nil {
		return "", "", false, fmt.Errorf("self-signed certificate: %w", err)
	}
	return certFile, keyFile, true, nil
}

// selfSignedUsable reports whether the pair loads and is far from expiry.
// A pair that exists but does not load is an error: it may be the
// admin's, and is not silently replaced.
func selfSignedUsable(certFile, keyFile string, now time.Time) (bool, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("self-signed certificate in %s does not load (remove both files to make a new one): %w", filepath.Dir(certFile), err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	return err == nil && now.Add(selfSignedRenewBefore).Before(leaf.NotAfter), nil
}

// SelfSigned makes an ECDSA P-256 certificate for the names a local
// client uses: localhost, 127.0.0.1, ::1 and the host name.
func SelfSigned(hostname string, now time.Time) (certPEM, keyPEM []byte, err error) {
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
