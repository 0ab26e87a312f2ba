package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lbtest"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/tlsconf"
)

// syncBuffer is a buffer a running server may write while the test reads
// it.
type syncBuffer = lbtest.Buffer

// testEnv is a working directory and environment to run commands in.
type testEnv struct {
	t       *testing.T
	dir     string
	environ []string
}

func newTestEnv(t *testing.T) *testEnv {
	return &testEnv{t: t, dir: t.TempDir()}
}

// result is what one command run left behind.
type result struct {
	code           int
	stdout, stderr string
}

// run runs letterbox in-process with args and stdin.
func (e *testEnv) run(stdin string, args ...string) result {
	e.t.Helper()
	return e.runCtx(context.Background(), stdin, args...)
}

func (e *testEnv) runCtx(ctx context.Context, stdin string, args ...string) result {
	e.t.Helper()
	var out, errb syncBuffer
	c := &cli{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, environ: e.environ, workDir: e.dir}
	code := c.run(ctx, args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// must runs a command that has to succeed.
func (e *testEnv) must(stdin string, args ...string) result {
	e.t.Helper()
	r := e.run(stdin, args...)
	if r.code != exitOK {
		e.t.Fatalf("letterbox %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// dataDir is where the embedded defaults put data for this env.
func (e *testEnv) dataDir() string { return filepath.Join(e.dir, "letterbox-data") }

func TestUsage(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		args       []string
		code       int
		out, errIn string
	}{
		{nil, exitUsage, "", "Usage: letterbox COMMAND"},
		{[]string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{[]string{"help"}, exitOK, "Usage: letterbox COMMAND", ""},
		{[]string{"--help"}, exitOK, "deliver USER", ""},
		{[]string{"help", "serve"}, exitOK, "--imap.listen", ""},
		{[]string{"serve", "--help"}, exitOK, "--auth.allow_insecure", ""},
		{[]string{"help", "nope"}, exitUsage, "", "unknown command"},
		{[]string{"serve", "--no-such-flag"}, exitUsage, "", "unknown flag"},
		{[]string{"serve", "extra"}, exitUsage, "", "unexpected argument"},
		{[]string{"user"}, exitUsage, "", "missing subcommand"},
		{[]string{"user", "rename", "a"}, exitUsage, "", "unknown subcommand"},
		{[]string{"user", "add"}, exitUsage, "", "usage"},
		{[]string{"user", "list", "x"}, exitUsage, "", "usage"},
		{[]string{"deliver"}, exitUsage, "", "usage"},
		{[]string{"config"}, exitUsage, "", "config check"},
		{[]string{"hash", "pw"}, exitUsage, "", "no arguments"},
		{[]string{"version"}, exitOK, "letterbox ", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.run("", tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstderr: %s", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.out) {
				t.Errorf("stdout %q lacks %q", r.stdout, tt.out)
			}
			if !strings.Contains(r.stderr, tt.errIn) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.errIn)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	e := newTestEnv(t)
	e.environ = []string{"LETTERBOX_IMAP__LISTEN=127.0.0.1:143,[::1]:143"}
	r := e.must("", "config", "check", "--log.format=json")
	for _, want := range []string{
		"data_dir = '" + e.dataDir() + "' # default",
		"listen = ['127.0.0.1:143', '[::1]:143'] # env LETTERBOX_IMAP__LISTEN",
		"format = 'json' # flag --log.format",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}

	t.Run("bad value", func(t *testing.T) {
		r := e.run("", "config", "check", "--pop3.idle_timeout=1m")
		if r.code != exitConfig || !strings.Contains(r.stderr, "pop3.idle_timeout") || !strings.Contains(r.stderr, "flag --pop3.idle_timeout") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})

	// With a real certificate configured, the paths are printed and
	// checked, the key itself never.
	t.Run("certificate", func(t *testing.T) {
		certPEM, keyPEM, err := tlsconf.SelfSigned("mail.example.org", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cert, key := filepath.Join(e.dir, "cert.pem"), filepath.Join(e.dir, "key.pem")
		writeFile(t, cert, certPEM)
		writeFile(t, key, keyPEM)
		r := e.must("", "config", "check", "--tls.cert_file", cert, "--tls.key_file", key)
		if !strings.Contains(r.stdout, key) || strings.Contains(r.stdout, "PRIVATE KEY") {
			t.Errorf("want the key path and not the key:\n%s", r.stdout)
		}
		r = e.run("", "config", "check", "--tls.cert_file", cert, "--tls.key_file", cert)
		if r.code != exitConfig || !strings.Contains(r.stderr, "tls.cert_file") {
			t.Errorf("mismatched key: exit %d, stderr %q", r.code, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "PRIVATE KEY") {
			t.Error("key material printed")
		}
	})

	t.Run("missing users file with a config file", func(t *testing.T) {
		cfgFile := filepath.Join(e.dir, "letterbox.toml")
		writeFile(t, cfgFile, []byte("data_dir = \"data\"\n"))
		r := e.run("", "config", "check", "--config", cfgFile)
		if r.code != exitConfig || !strings.Contains(r.stderr, "auth.users_file") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
