package config

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/toml/v2"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// load runs Load with a config file holding toml (none if ""), the given
// environment and command-line arguments, in a temp working directory.
func load(t *testing.T, toml string, environ []string, args ...string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	if toml != "" {
		path := filepath.Join(dir, "etc", "letterbox.toml")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", path}, args...)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(Options{Flags: fs, Environ: environ, WorkDir: dir})
}

func mustLoad(t *testing.T, toml string, environ []string, args ...string) *Config {
	t.Helper()
	c, err := load(t, toml, environ, args...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, "", nil)
	if c.File != "" {
		t.Errorf("File = %q, want none", c.File)
	}
	if !filepath.IsAbs(c.DataDir) || filepath.Base(c.DataDir) != "letterbox-data" {
		t.Errorf("DataDir = %q", c.DataDir)
	}
	if c.Hostname == "" {
		t.Error("Hostname not filled in")
	}
	want := []struct {
		name      string
		got, want any
	}{
		{"log level", c.Log.Level, slog.LevelInfo},
		{"log format", c.Log.Format, "text"},
		{"self-signed", c.TLS.SelfSigned(), true},
		{"min version", c.TLS.MinVersion, uint16(tls.VersionTLS12)},
		{"users file", c.Auth.UsersFile, filepath.Join(c.DataDir, "users")},
		{"allow insecure", c.Auth.AllowInsecure, false},
		{"fail delay", c.Auth.FailDelay, 2 * time.Second},
		{"throttle failures", c.Auth.ThrottleFailures, 10},
		{"throttle window", c.Auth.ThrottleWindow, 15 * time.Minute},
		{"mail path", c.Mail.Path, filepath.Join(c.DataDir, "mail/{user}/Maildir")},
		{"pop3 listen", c.POP3.Listen, []string{"127.0.0.1:1110"}},
		{"pop3 listen tls", c.POP3.ListenTLS, []string{"127.0.0.1:1995"}},
		{"pop3 max conns", c.POP3.MaxConnections, 1000},
		{"pop3 per ip", c.POP3.MaxConnectionsPerIP, 20},
		{"pop3 idle", c.POP3.IdleTimeout, 10 * time.Minute},
		{"pop3 line", c.POP3.MaxLineLength, 1024},
		{"pop3 bad", c.POP3.MaxBadCommands, 10},
		{"imap listen", c.IMAP.Listen, []string{"127.0.0.1:1143"}},
		{"imap listen tls", c.IMAP.ListenTLS, []string{"127.0.0.1:1993"}},
		{"imap max conns", c.IMAP.MaxConnections, 5000},
		{"imap per ip", c.IMAP.MaxConnectionsPerIP, 50},
		{"imap per user", c.IMAP.MaxConnectionsPerUser, 20},
		{"imap idle", c.IMAP.IdleTimeout, 30 * time.Minute},
		{"imap append", c.IMAP.AppendLimit, int64(52428800)},
		{"imap line", c.IMAP.MaxLineLength, 51200},
	}
	for _, w := range want {
		if !reflect.DeepEqual(w.got, w.want) {
			t.Errorf("%s = %v, want %v", w.name, w.got, w.want)
		}
	}
	for _, key := range Keys() {
		if got := c.Source(key); got != "default" {
			t.Errorf("Source(%s) = %q, want default", key, got)
		}
	}
}

// Each layer overrides the one below it, and only flags actually given
// override anything.
func TestLayerPrecedence(t *testing.T) {
	file := `
[imap]
max_connections = 100
max_connections_per_ip = 7
idle_timeout = "45m"
[pop3]
max_connections = 200
`
	env := []string{
		"LETTERBOX_IMAP__MAX_CONNECTIONS=300",
		"LETTERBOX_IMAP__IDLE_TIMEOUT=1h",
		"LETTERBOX_AUTH__ALLOW_INSECURE=true",
		"LETTERBOX_IMAP__LISTEN=127.0.0.1:143,[::1]:143",
		"OTHER_VAR=ignored",
	}
	c := mustLoad(t, file, env, "--imap.max_connections=400", "--pop3.listen=")

	checks := []struct {
		key       string
		got, want any
		source    string
	}{
		{"imap.max_connections", c.IMAP.MaxConnections, 400, "flag --imap.max_connections"},
		{"imap.idle_timeout", c.IMAP.IdleTimeout, time.Hour, "env LETTERBOX_IMAP__IDLE_TIMEOUT"},
		{"imap.max_connections_per_ip", c.IMAP.MaxConnectionsPerIP, 7, c.File},
		{"pop3.max_connections", c.POP3.MaxConnections, 200, c.File},
		{"imap.max_connections_per_user", c.IMAP.MaxConnectionsPerUser, 20, "default"},
		{"auth.allow_insecure", c.Auth.AllowInsecure, true, "env LETTERBOX_AUTH__ALLOW_INSECURE"},
		{"imap.listen", c.IMAP.Listen, []string{"127.0.0.1:143", "[::1]:143"}, "env LETTERBOX_IMAP__LISTEN"},
		{"pop3.listen", c.POP3.Listen, []string(nil), "flag --pop3.listen"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.key, ch.got, ch.want)
		}
		if got := c.Source(ch.key); got != ch.source {
			t.Errorf("Source(%s) = %q, want %q", ch.key, got, ch.source)
		}
	}
}

func TestBoolFlagWithoutValue(t *testing.T) {
	c := mustLoad(t, "[auth]\nallow_insecure = false\n", nil, "--auth.allow_insecure")
	if !c.Auth.AllowInsecure {
		t.Error("--auth.allow_insecure did not override the file")
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.toml")
	if err := os.WriteFile(path, []byte("hostname = \"mx1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(Options{Environ: []string{EnvConfig + "=" + path}, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "mx1" || c.File != path {
		t.Errorf("hostname %q from %q; want mx1 from %s", c.Hostname, c.File, path)
	}

	// --config beats the environment.
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--config", "/nonexistent/letterbox.toml"}); err != nil {
		t.Fatal(err)
	}
	_, err = Load(Options{Flags: fs, Environ: []string{EnvConfig + "=" + path}})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/letterbox.toml") {
		t.Errorf("missing --config file: err = %v", err)
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name    string
		toml    string
		env     []string
		key     string
		inError string // besides the key; "FILE" stands for the file path
	}{
		{"file top level", "datadir = \"/x\"\n", nil, "datadir", "FILE"},
		{"file section", "[imap]\nlisten_ssl = []\n", nil, "imap.listen_ssl", "FILE"},
		{"file unknown section", "[smtp]\nlisten = []\n", nil, "smtp.listen", "FILE"},
		{"file scalar for section", "imap = 1\n", nil, "imap", "FILE"},
		{"env", "", []string{"LETTERBOX_IMAP__LISTN=x"}, "imap.listn", "env LETTERBOX_IMAP__LISTN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.toml, tt.env)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if ce.Key != tt.key || !errors.Is(err, errUnknownKey) {
				t.Errorf("err = %v, want unknown key %s", err, tt.key)
			}
			want := tt.inError
			if want == "FILE" {
				want = filepath.Join("etc", "letterbox.toml")
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("err = %q, want it to name %q and %q", err, tt.key, want)
			}
		})
	}
}

func TestEmptySectionIsFine(t *testing.T) {
	mustLoad(t, "[log]\n[pop3]\n", nil)
}

func TestSyntaxErrorNamesFileAndLine(t *testing.T) {
	_, err := load(t, "hostname = \"a\"\n[imap\n", nil)
	if err == nil || !strings.Contains(err.Error(), "letterbox.toml:2:") {
		t.Errorf("err = %v, want file:line", err)
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		name   string
		toml   string
		env    []string
		flags  []string
		key    string
		source string // "FILE" for the config file
		msg    string
	}{
		{"bad duration", "[auth]\nfail_delay = \"2 seconds\"\n", nil, nil, "auth.fail_delay", "FILE", "duration"},
		{"duration as int", "[auth]\nfail_delay = 2\n", nil, nil, "auth.fail_delay", "FILE", "duration"},
		{"negative duration", "", []string{"LETTERBOX_AUTH__FAIL_DELAY=-1s"}, nil, "auth.fail_delay", "env LETTERBOX_AUTH__FAIL_DELAY", "at least"},
		{"pop3 idle too short", "", nil, []string{"--pop3.idle_timeout=5m"}, "pop3.idle_timeout", "flag --pop3.idle_timeout", "at least 10m"},
		{"imap idle too short", "[imap]\nidle_timeout = \"29m\"\n", nil, nil, "imap.idle_timeout", "FILE", "at least 30m"},
		{"negative limit", "[imap]\nmax_connections = -1\n", nil, nil, "imap.max_connections", "FILE", "between"},
		{"negative throttle", "", nil, []string{"--auth.throttle_failures=-3"}, "auth.throttle_failures", "flag --auth.throttle_failures", "between"},
		{"zero append limit", "[imap]\nappend_limit = 0\n", nil, nil, "imap.append_limit", "FILE", "between"},
		{"limit not a number", "", []string{"LETTERBOX_POP3__MAX_CONNECTIONS=lots"}, nil, "pop3.max_connections", "env LETTERBOX_POP3__MAX_CONNECTIONS", "integer"},
		{"limit as string in file", "[pop3]\nmax_connections = \"ten\"\n", nil, nil, "pop3.max_connections", "FILE", "integer"},
		{"tiny pop3 line", "[pop3]\nmax_line_length = 100\n", nil, nil, "pop3.max_line_length", "FILE", "between"},
		{"listen no port", "[imap]\nlisten = [\"127.0.0.1\"]\n", nil, nil, "imap.listen", "FILE", "host:port"},
		{"listen bad port", "", []string{"LETTERBOX_POP3__LISTEN_TLS=:99999"}, nil, "pop3.listen_tls", "env LETTERBOX_POP3__LISTEN_TLS", "port"},
		{"listen named port", "[imap]\nlisten = [\":imap\"]\n", nil, nil, "imap.listen", "FILE", "port"},
		{"listen hostname", "[imap]\nlisten = [\"mail.example.org:143\"]\n", nil, nil, "imap.listen", "FILE", "IP address"},
		{"listen not strings", "[imap]\nlisten = [143]\n", nil, nil, "imap.listen", "FILE", "list of strings"},
		{"listen twice", "[imap]\nlisten = [\"127.0.0.1:1110\"]\n", nil, nil, "imap.listen", "FILE", "also in pop3.listen"},
		{"log level", "", []string{"LETTERBOX_LOG__LEVEL=verbose"}, nil, "log.level", "env LETTERBOX_LOG__LEVEL", "debug, info, warn, error"},
		{"log format", "[log]\nformat = \"xml\"\n", nil, nil, "log.format", "FILE", "text, json"},
		{"tls 1.1", "[tls]\nmin_version = \"1.1\"\n", nil, nil, "tls.min_version", "FILE", "1.2, 1.3"},
		{"cert without key", "[tls]\ncert_file = \"/etc/c.pem\"\n", nil, nil, "tls.key_file", "default", "together"},
		{"bad placeholder", "[mail]\npath = \"/var/mail/{usr}/Maildir\"\n", nil, nil, "mail.path", "FILE", "{usr}"},
		{"unclosed placeholder", "[mail]\npath = \"/var/mail/{user\"\n", nil, nil, "mail.path", "FILE", "unmatched"},
		{"no user placeholder", "[mail]\npath = \"/var/mail/{domain}\"\n", nil, nil, "mail.path", "FILE", "{user} or {localpart}"},
		{"bad hostname", "hostname = \"a/b\"\n", nil, nil, "hostname", "FILE", "must not contain"},
		{"bad bool", "", []string{"LETTERBOX_AUTH__ALLOW_INSECURE=maybe"}, nil, "auth.allow_insecure", "env LETTERBOX_AUTH__ALLOW_INSECURE", "true or false"},
		{"empty data_dir", "data_dir = \"\"\n", nil, nil, "data_dir", "FILE", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.toml, tt.env, tt.flags...)
			if err == nil {
				t.Fatalf("loaded %+v, want an error", c)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *Error", err)
			}
			src := tt.source
			if src == "FILE" {
				src = filepath.Join("etc", "letterbox.toml")
			}
			if ce.Key != tt.key || !strings.Contains(ce.Source, src) {
				t.Errorf("error for %s from %s, want %s from %s: %v", ce.Key, ce.Source, tt.key, src, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to say %q", err, tt.msg)
			}
		})
	}
}

// Every problem is reported in one go, not one per run.
func TestAllErrorsReported(t *testing.T) {
	_, err := load(t, "[pop3]\nidle_timeout = \"1m\"\n[imap]\nidle_timeout = \"1m\"\n", nil)
	if err == nil || !strings.Contains(err.Error(), "pop3.idle_timeout") || !strings.Contains(err.Error(), "imap.idle_timeout") {
		t.Errorf("err = %v, want both idle timeouts", err)
	}
}

func TestRelativePaths(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		c := mustLoad(t, `
data_dir = "../var"
[auth]
users_file = "passwd"
[tls]
cert_file = "tls/cert.pem"
key_file = "/etc/ssl/key.pem"
[mail]
path = "{domain}/{localpart}"
`, nil)
		etc := filepath.Dir(c.File)
		want := filepath.Join(filepath.Dir(etc), "var")
		if c.DataDir != want {
			t.Errorf("DataDir = %q, want %q (relative to the config file)", c.DataDir, want)
		}
		for got, want := range map[string]string{
			c.Auth.UsersFile: filepath.Join(want, "passwd"),
			c.TLS.CertFile:   filepath.Join(want, "tls/cert.pem"),
			c.TLS.KeyFile:    "/etc/ssl/key.pem",
			c.Mail.Path:      filepath.Join(want, "{domain}/{localpart}"),
		} {
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		}
	})
	t.Run("default data_dir with a file", func(t *testing.T) {
		c := mustLoad(t, "hostname = \"h\"\n", nil)
		wd := filepath.Dir(filepath.Dir(c.File))
		if want := filepath.Join(wd, "letterbox-data"); c.DataDir != want {
			t.Errorf("DataDir = %q, want %q (relative to the working directory)", c.DataDir, want)
		}
	})
	t.Run("flag", func(t *testing.T) {
		c := mustLoad(t, "data_dir = \"/srv/mail\"\n", nil, "--data_dir=data")
		wd := filepath.Dir(filepath.Dir(c.File))
		if want := filepath.Join(wd, "data"); c.DataDir != want {
			t.Errorf("DataDir = %q, want %q", c.DataDir, want)
		}
		if want := filepath.Join(wd, "data", "users"); c.Auth.UsersFile != want {
			t.Errorf("UsersFile = %q, want %q", c.Auth.UsersFile, want)
		}
	})
}

// deploy/letterbox.toml is the production example: it must load, set every
// key, and keep to what it promises.
func TestDeployExample(t *testing.T) {
	path, err := filepath.Abs("../../../../deploy/letterbox.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(Options{Environ: []string{EnvConfig + "=" + path}, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/letterbox" || c.Auth.UsersFile != "/etc/letterbox/users" {
		t.Errorf("data_dir %q users_file %q", c.DataDir, c.Auth.UsersFile)
	}
	if c.TLS.SelfSigned() || !strings.HasPrefix(c.TLS.CertFile, "/etc/letterbox/tls/") || !strings.HasPrefix(c.TLS.KeyFile, "/etc/letterbox/tls/") {
		t.Errorf("tls %+v", c.TLS)
	}
	ports := strings.Join(slices.Concat(c.POP3.Listen, c.POP3.ListenTLS, c.IMAP.Listen, c.IMAP.ListenTLS), " ")
	for _, p := range []string{":110", ":995", ":143", ":993"} {
		if !strings.Contains(ports, p) {
			t.Errorf("listeners %q lack port %s", ports, p)
		}
	}
	if strings.Contains(ports, "127.0.0.1") {
		t.Errorf("listeners %q should be on all addresses", ports)
	}

	// Every key is set, and documented by a comment right above it.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fk := koanf.New(".")
	if err := fk.Load(rawbytes.Provider(raw), toml.Parser()); err != nil {
		t.Fatal(err)
	}
	for _, key := range Keys() {
		if !fk.Exists(key) {
			t.Errorf("deploy/letterbox.toml does not set %s", key)
		}
	}
	lines := strings.Split(string(raw), "\n")
	for i, line := range lines {
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		if i == 0 || !strings.HasPrefix(lines[i-1], "#") {
			t.Errorf("deploy/letterbox.toml line %d %q has no comment above it", i+1, line)
		}
	}
}

// Every key of the defaults has flag help, a flag, and a Config field that
// the decoder fills in (and Values prints).
func TestEveryKeyIsWired(t *testing.T) {
	ds, err := defaults()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(ds.order), len(ds.k.Keys()); got != want {
		t.Errorf("help parser found %d keys, koanf %d", got, want)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	d := &decoder{k: ds.k, src: map[string]string{}, used: map[string]bool{}}
	c := d.decode(t.TempDir())
	if len(d.errs) > 0 {
		t.Fatal(errors.Join(d.errs...))
	}
	vals := c.Values()
	for _, key := range ds.order {
		if ds.help[key] == "" {
			t.Errorf("%s has no comment in defaults.toml", key)
		}
		if fs.Lookup(key) == nil {
			t.Errorf("no flag --%s", key)
		}
		if !d.used[key] {
			t.Errorf("%s is never decoded", key)
		}
		if _, ok := vals[key]; !ok {
			t.Errorf("%s missing from Values", key)
		}
	}
	if len(vals) != len(ds.order) {
		t.Errorf("Values has %d keys, defaults %d", len(vals), len(ds.order))
	}
}

// The printed configuration is itself a config file that loads back to
// the same values.
func TestTOMLRoundTrip(t *testing.T) {
	c := mustLoad(t, "[imap]\nidle_timeout = \"1h30m\"\n[tls]\ncert_file = \"/etc/letterbox/tls/fullchain.pem\"\nkey_file = \"/etc/letterbox/tls/privkey.pem\"\nmin_version = \"1.3\"\n",
		[]string{"LETTERBOX_POP3__LISTEN="}, "--log.level=debug")
	out, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "# env LETTERBOX_POP3__LISTEN") || !strings.Contains(string(out), "# flag --log.level") {
		t.Errorf("sources not shown:\n%s", out)
	}
	c2 := mustLoad(t, string(out), nil)
	if !reflect.DeepEqual(c.Values(), c2.Values()) {
		t.Errorf("round trip changed values:\n%v\n%v", c.Values(), c2.Values())
	}
}

func TestTOMLRedactsKeyMaterial(t *testing.T) {
	pem := "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----"
	c := mustLoad(t, "", []string{"LETTERBOX_TLS__CERT_FILE=/etc/c.pem", "LETTERBOX_TLS__KEY_FILE=" + pem})
	out, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "MIGHAgEA") || !strings.Contains(string(out), "<redacted>") {
		t.Errorf("key material printed:\n%s", out)
	}
	if !strings.Contains(string(out), "/etc/c.pem") {
		t.Errorf("cert path not printed:\n%s", out)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Second:                      "2s",
		15 * time.Minute:                     "15m",
		time.Hour:                            "1h",
		90 * time.Minute:                     "1h30m",
		time.Hour + 30*time.Second:           "1h0m30s",
		1500 * time.Millisecond:              "1.5s",
		0:                                    "0s",
		10*time.Minute + 30*time.Second:      "10m30s",
		24*time.Hour + 0*time.Minute:         "24h",
		2*time.Hour + 5*time.Minute:          "2h5m",
		-1 * time.Second:                     "-1s",
		500 * time.Microsecond:               "500µs",
		3*time.Minute + 500*time.Microsecond: "3m0.0005s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Errorf("%q does not parse back to %v", FormatDuration(d), d)
		}
	}
}
