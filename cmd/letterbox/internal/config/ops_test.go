package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The [lmtp], [metrics] and [control] sections.

func TestOpsDefaults(t *testing.T) {
	c := mustLoad(t, "", nil)
	want := []struct {
		name      string
		got, want any
	}{
		{"lmtp socket", c.LMTP.Socket, ""},
		{"lmtp socket mode", c.LMTP.SocketMode, os.FileMode(0o660)},
		{"lmtp listen", c.LMTP.Listen, []string(nil)},
		{"lmtp allow remote", c.LMTP.AllowRemote, false},
		{"lmtp enabled", c.LMTP.Enabled(), false},
		{"lmtp max size", c.LMTP.MaxMessageSize, int64(52428800)},
		{"lmtp max rcpt", c.LMTP.MaxRecipients, 100},
		{"lmtp timeout", c.LMTP.Timeout, 5 * time.Minute},
		{"lmtp command timeout", c.LMTP.CommandTimeout, time.Minute},
		{"lmtp max conns", c.LMTP.MaxConnections, 100},
		{"lmtp max conns per ip", c.LMTP.MaxConnectionsPerIP, 50},
		{"pop3 command timeout", c.POP3.CommandTimeout, time.Minute},
		{"autoconfig enabled", c.Autoconfig.Enabled(), false},
		{"autoconfig hostname", c.Autoconfig.Hostname, c.Hostname},
		{"autoconfig smtp port", c.Autoconfig.SMTPPort, 0},
		{"autoconfig login", c.Autoconfig.Login, "address"},
		{"metrics listen", c.Metrics.Listen, ""},
		{"metrics allow remote", c.Metrics.AllowRemote, false},
		{"control socket", c.Control.Socket, filepath.Join(c.DataDir, "control")},
	}
	for _, w := range want {
		if !reflect.DeepEqual(w.got, w.want) {
			t.Errorf("%s = %#v, want %#v", w.name, w.got, w.want)
		}
	}
}

func TestOpsValues(t *testing.T) {
	c := mustLoad(t, `
[lmtp]
socket = "run/lmtp"
socket_mode = "0600"
listen = ["127.0.0.1:24", "[::1]:24", "localhost:2424"]
max_message_size = 1000
max_recipients = 7
timeout = "90s"
[metrics]
listen = "127.0.0.1:9154"
[control]
socket = "/run/letterbox/control"
`, nil)
	if want := filepath.Join(c.DataDir, "run/lmtp"); c.LMTP.Socket != want {
		t.Errorf("lmtp socket %q, want %q (relative to data_dir)", c.LMTP.Socket, want)
	}
	if c.LMTP.SocketMode != 0o600 || len(c.LMTP.Listen) != 3 || c.LMTP.MaxMessageSize != 1000 ||
		c.LMTP.MaxRecipients != 7 || c.LMTP.Timeout != 90*time.Second || !c.LMTP.Enabled() {
		t.Errorf("lmtp %+v", c.LMTP)
	}
	if c.Metrics.Listen != "127.0.0.1:9154" || c.Control.Socket != "/run/letterbox/control" {
		t.Errorf("metrics %+v control %+v", c.Metrics, c.Control)
	}

	// Other addresses need allow_remote.
	c = mustLoad(t, "[lmtp]\nlisten = [\":24\"]\nallow_remote = true\n[metrics]\nlisten = \"192.0.2.1:9154\"\nallow_remote = true\n", nil)
	if c.LMTP.Listen[0] != ":24" || c.Metrics.Listen != "192.0.2.1:9154" {
		t.Errorf("lmtp %v metrics %q", c.LMTP.Listen, c.Metrics.Listen)
	}
	// Both sockets off.
	c = mustLoad(t, "", nil, "--control.socket=")
	if c.Control.Socket != "" {
		t.Errorf("control socket %q, want off", c.Control.Socket)
	}
}

func TestOpsBadValues(t *testing.T) {
	tests := []struct {
		name string
		toml string
		key  string
		msg  string
	}{
		{"lmtp all addresses", "[lmtp]\nlisten = [\":24\"]\n", "lmtp.listen", "lmtp.allow_remote"},
		{"lmtp public address", "[lmtp]\nlisten = [\"192.0.2.1:24\"]\n", "lmtp.listen", "not loopback"},
		{"lmtp bad address", "[lmtp]\nlisten = [\"24\"]\n", "lmtp.listen", "host:port"},
		{"lmtp mode not octal", "[lmtp]\nsocket_mode = \"rw-rw----\"\n", "lmtp.socket_mode", "octal"},
		{"lmtp mode too big", "[lmtp]\nsocket_mode = \"1777\"\n", "lmtp.socket_mode", "octal"},
		{"lmtp mode owner", "[lmtp]\nsocket_mode = \"0066\"\n", "lmtp.socket_mode", "owner"},
		{"lmtp zero size", "[lmtp]\nmax_message_size = 0\n", "lmtp.max_message_size", "between"},
		{"lmtp zero rcpt", "[lmtp]\nmax_recipients = 0\n", "lmtp.max_recipients", "between"},
		{"lmtp timeout", "[lmtp]\ntimeout = \"10ms\"\n", "lmtp.timeout", "at least 1s"},
		{"lmtp same port as pop3", "[lmtp]\nlisten = [\"127.0.0.1:1110\"]\n", "lmtp.listen", "also in pop3.listen"},
		{"metrics all addresses", "[metrics]\nlisten = \":9154\"\n", "metrics.listen", "metrics.allow_remote"},
		{"metrics no port", "[metrics]\nlisten = \"127.0.0.1\"\n", "metrics.listen", "host:port"},
		{"metrics list", "[metrics]\nlisten = [\"127.0.0.1:9154\"]\n", "metrics.listen", "string"},
		{"metrics same port as imap", "[metrics]\nlisten = \"127.0.0.1:1143\"\n", "metrics.listen", "also in imap.listen"},
		{"lmtp command timeout", "[lmtp]\ncommand_timeout = \"2h\"\n", "lmtp.command_timeout", "at most 1h"},
		{"lmtp zero conns", "[lmtp]\nmax_connections = 0\n", "lmtp.max_connections", "between"},
		{"pop3 command timeout", "[pop3]\ncommand_timeout = \"0s\"\n", "pop3.command_timeout", "at least 1s"},
		{"autoconfig without smtp", "[autoconfig]\nlisten = [\"127.0.0.1:8080\"]\n", "autoconfig.smtp", "required"},
		{"autoconfig smtp no port", "[autoconfig]\nsmtp = \"mail.example.org\"\n", "autoconfig.smtp", "host:port"},
		{"autoconfig smtp bad host", "[autoconfig]\nsmtp = \"a/b:25\"\n", "autoconfig.smtp", "not a host name"},
		{"autoconfig hostname", "[autoconfig]\nhostname = \"mail example\"\n", "autoconfig.hostname", "not a host name"},
		{"autoconfig login", "[autoconfig]\nlogin = \"uid\"\n", "autoconfig.login", "address, localpart"},
		{"autoconfig same port", "[autoconfig]\nlisten_tls = [\"127.0.0.1:1993\"]\nsmtp = \":465\"\n", "autoconfig.listen_tls", "also in imap.listen_tls"},
		{"same socket", "[lmtp]\nsocket = \"s\"\n[control]\nsocket = \"s\"\n", "control.socket", "differ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.toml, nil)
			if err == nil {
				t.Fatalf("loaded %+v, want an error", c)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tt.key {
				t.Fatalf("err = %v, want one for %s", err, tt.key)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to say %q", err, tt.msg)
			}
		})
	}
}

// The production example delivers over a unix socket in the runtime
// directory and keeps metrics and LMTP off the network.
func TestDeployExampleOps(t *testing.T) {
	path, err := filepath.Abs("../../../../deploy/letterbox.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(Options{Environ: []string{EnvConfig + "=" + path}, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if c.LMTP.Socket != "/run/letterbox/lmtp" || c.LMTP.SocketMode != 0o660 || c.LMTP.AllowRemote || c.Metrics.AllowRemote {
		t.Errorf("lmtp %+v metrics %+v", c.LMTP, c.Metrics)
	}
	if c.Control.Socket != "/run/letterbox/control" {
		t.Errorf("control %+v", c.Control)
	}
	if c.Autoconfig.Enabled() || c.Autoconfig.Hostname != "mail.example.org" || c.Autoconfig.SMTPHost != "mail.example.org" || c.Autoconfig.SMTPPort != 465 {
		t.Errorf("autoconfig %+v", c.Autoconfig)
	}
}

func TestAutoconfigValues(t *testing.T) {
	c := mustLoad(t, "hostname = \"host7\"\n[autoconfig]\nlisten = [\":8080\"]\nlisten_tls = [\"[::]:8443\"]\nhostname = \"mail.example.org\"\nsmtp = \"smtp.example.org:587\"\nlogin = \"localpart\"\n", nil)
	a := c.Autoconfig
	if !a.Enabled() || a.Hostname != "mail.example.org" || a.SMTPHost != "smtp.example.org" || a.SMTPPort != 587 || a.Login != "localpart" || len(a.ListenTLS) != 1 {
		t.Errorf("autoconfig %+v", a)
	}
	c = mustLoad(t, "hostname = \"host7\"\n[autoconfig]\nlisten = [\":8080\"]\nsmtp = \":465\"\n", nil)
	if a := c.Autoconfig; a.Hostname != "host7" || a.SMTPHost != "host7" || a.SMTPPort != 465 {
		t.Errorf("defaults from hostname: %+v", a)
	}
}
