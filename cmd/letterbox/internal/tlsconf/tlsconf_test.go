package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestEnsureSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	cert, key, created, err := EnsureSelfSigned(dir, "mx.example.org", now)
	if err != nil || !created {
		t.Fatalf("first call: created %v, err %v", created, err)
	}
	leaf := parseCert(t, readFile(t, cert))
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "mx.example.org"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
	if leaf.NotAfter.Sub(now) > 825*24*time.Hour {
		t.Errorf("valid until %v: longer than Apple clients accept", leaf.NotAfter)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ext key usage %v", leaf.ExtKeyUsage)
	}
	for path, mode := range map[string]os.FileMode{key: 0o600, dir: 0o700} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v (%v)", path, fi.Mode().Perm(), mode, err)
		}
	}
	first := readFile(t, cert)

	// Reused while valid...
	if _, _, created, err := EnsureSelfSigned(dir, "mx.example.org", now.Add(365*24*time.Hour)); err != nil || created {
		t.Errorf("a year later: created %v, err %v", created, err)
	}
	if readFile(t, cert) != first {
		t.Error("certificate replaced while still valid")
	}
	// ...and replaced shortly before it expires.
	if _, _, created, err := EnsureSelfSigned(dir, "mx.example.org", leaf.NotAfter.Add(-24*time.Hour)); err != nil || !created {
		t.Errorf("near expiry: created %v, err %v", created, err)
	}
	if readFile(t, cert) == first {
		t.Error("certificate not renewed near expiry")
	}

	// A damaged pair is not silently replaced: it may be the admin's.
	writeFile(t, key, []byte("garbage"))
	if _, _, _, err := EnsureSelfSigned(dir, "mx.example.org", now); err == nil {
		t.Error("damaged key accepted")
	}
}

// The certificate is re-read when its files change, at most every
// CheckInterval, and a broken replacement keeps the old one in force.
func TestCertReload(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	write := func(host string) {
		c, k, err := SelfSigned(host, t0)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, keyFile, k)
		writeFile(t, certFile, c)
	}
	write("one.example")

	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	cl := &Certs{CertFile: certFile, KeyFile: keyFile, log: slog.New(slog.DiscardHandler), now: clock}
	if err := cl.Reload(); err != nil {
		t.Fatal(err)
	}
	served := func() string {
		c, err := cl.getCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if got := served(); got != "one.example" {
		t.Fatalf("serving %q", got)
	}

	write("two.example")
	bumpMtime(t, certFile, keyFile)
	if got := served(); got != "one.example" {
		t.Errorf("reloaded before CheckInterval: %q", got)
	}
	advance(CheckInterval)
	if got := served(); got != "two.example" {
		t.Errorf("not reloaded after a change: %q", got)
	}

	writeFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"))
	bumpMtime(t, certFile)
	advance(CheckInterval)
	if got := served(); got != "two.example" {
		t.Errorf("broken renewal replaced the certificate: %q", got)
	}
}

// bumpMtime makes a rewrite visible even on a file system with coarse
// timestamps.
func bumpMtime(t *testing.T, files ...string) {
	t.Helper()
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		next := fi.ModTime().Add(time.Second)
		if err := os.Chtimes(f, next, next); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEnsureSelfSignedRace: servers started at once on a new data
// directory end up with one certificate and its key, made once.
func TestEnsureSelfSignedRace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	const n = 8
	created := make(chan bool, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			cert, key, c, err := EnsureSelfSigned(dir, "mx.example.org", now)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
				t.Errorf("pair does not load: %v", err)
			}
			created <- c
		})
	}
	wg.Wait()
	close(created)
	made := 0
	for c := range created {
		if c {
			made++
		}
	}
	if made != 1 {
		t.Errorf("certificate made %d times, want 1", made)
	}
}

func parseCert(t *testing.T, certPEM string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
