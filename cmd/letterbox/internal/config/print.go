package config

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"

	gotoml "github.com/pelletier/go-toml/v2"
)

// Values returns the effective value of every key in config-file form:
// durations and TLS versions as strings, paths absolute, the resolved
// hostname.
func (c *Config) Values() map[string]any {
	minVersion := "1.2"
	if c.TLS.MinVersion == tls.VersionTLS13 {
		minVersion = "1.3"
	}
	smtp := ""
	if c.Autoconfig.SMTPPort != 0 {
		smtp = net.JoinHostPort(c.Autoconfig.SMTPHost, strconv.Itoa(c.Autoconfig.SMTPPort))
	}
	return map[string]any{
		"data_dir":                      c.DataDir,
		"hostname":                      c.Hostname,
		"server.drain_timeout":          FormatDuration(c.Server.DrainTimeout),
		"log.level":                     strings.ToLower(c.Log.Level.String()),
		"log.format":                    c.Log.Format,
		"tls.cert_file":                 c.TLS.CertFile,
		"tls.key_file":                  c.TLS.KeyFile,
		"tls.min_version":               minVersion,
		"auth.users_file":               c.Auth.UsersFile,
		"auth.allow_insecure":           c.Auth.AllowInsecure,
		"auth.allow_insecure_loopback":  c.Auth.AllowInsecureLoopback,
		"auth.fail_delay":               FormatDuration(c.Auth.FailDelay),
		"auth.throttle_failures":        c.Auth.ThrottleFailures,
		"auth.throttle_window":          FormatDuration(c.Auth.ThrottleWindow),
		"auth.login_cache_ttl":          FormatDuration(c.Auth.LoginCacheTTL),
		"mail.path":                     c.Mail.Path,
		"pop3.listen":                   nonNil(c.POP3.Listen),
		"pop3.listen_tls":               nonNil(c.POP3.ListenTLS),
		"pop3.max_connections":          c.POP3.MaxConnections,
		"pop3.max_connections_per_ip":   c.POP3.MaxConnectionsPerIP,
		"pop3.idle_timeout":             FormatDuration(c.POP3.IdleTimeout),
		"pop3.command_timeout":          FormatDuration(c.POP3.CommandTimeout),
		"pop3.max_line_length":          c.POP3.MaxLineLength,
		"pop3.max_bad_commands":         c.POP3.MaxBadCommands,
		"imap.listen":                   nonNil(c.IMAP.Listen),
		"imap.listen_tls":               nonNil(c.IMAP.ListenTLS),
		"imap.max_connections":          c.IMAP.MaxConnections,
		"imap.max_connections_per_ip":   c.IMAP.MaxConnectionsPerIP,
		"imap.max_connections_per_user": c.IMAP.MaxConnectionsPerUser,
		"imap.idle_timeout":             FormatDuration(c.IMAP.IdleTimeout),
		"imap.idle_keepalive":           FormatDuration(c.IMAP.IdleKeepalive),
		"imap.command_timeout":          FormatDuration(c.IMAP.CommandTimeout),
		"imap.quota_storage":            c.IMAP.QuotaStorage,
		"imap.quota_messages":           c.IMAP.QuotaMessages,
		"imap.append_limit":             c.IMAP.AppendLimit,
		"imap.max_line_length":          c.IMAP.MaxLineLength,
		"lmtp.socket":                   c.LMTP.Socket,
		"lmtp.socket_mode":              fmt.Sprintf("%04o", uint32(c.LMTP.SocketMode)),
		"lmtp.listen":                   nonNil(c.LMTP.Listen),
		"lmtp.allow_remote":             c.LMTP.AllowRemote,
		"lmtp.max_message_size":         c.LMTP.MaxMessageSize,
		"lmtp.max_recipients":           c.LMTP.MaxRecipients,
		"lmtp.timeout":                  FormatDuration(c.LMTP.Timeout),
		"lmtp.command_timeout":          FormatDuration(c.LMTP.CommandTimeout),
		"lmtp.max_connections":          c.LMTP.MaxConnections,
		"lmtp.max_connections_per_ip":   c.LMTP.MaxConnectionsPerIP,
		"metrics.listen":                c.Metrics.Listen,
		"metrics.allow_remote":          c.Metrics.AllowRemote,
		"control.socket":                c.Control.Socket,
		"autoconfig.listen":             nonNil(c.Autoconfig.Listen),
		"autoconfig.listen_tls":         nonNil(c.Autoconfig.ListenTLS),
		"autoconfig.hostname":           c.Autoconfig.Hostname,
		"autoconfig.smtp":               smtp,
		"autoconfig.login":              c.Autoconfig.Login,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// redact hides a value that holds key material. The config holds no secret
// by design (TLS keys are named by path and never read here; passwords live
// in the users file), but a PEM block pasted into tls.key_file or an
// environment variable must not end up in a terminal or a bug report.
func redact(v any) any {
	if s, ok := v.(string); ok && strings.Contains(s, "-----BEGIN") {
		return "<redacted>"
	}
	return v
}

// TOML writes the effective configuration as a config file that Load reads
// back to the same Config, each key followed by the layer it came from.
func (c *Config) TOML() ([]byte, error) {
	vals := c.Values()
	var b bytes.Buffer
	if c.File != "" {
		fmt.Fprintf(&b, "# Effective configuration (config file %s).\n", c.File)
	} else {
		b.WriteString("# Effective configuration (embedded defaults; no config file).\n")
	}
	section := ""
	for _, key := range Keys() {
		if sec, _, ok := strings.Cut(key, "."); ok && sec != section {
			section = sec
			fmt.Fprintf(&b, "\n[%s]\n", sec)
		}
		enc, err := encodeValue(redact(vals[key]))
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", key, err)
		}
		name := key[strings.LastIndexByte(key, '.')+1:]
		fmt.Fprintf(&b, "%s = %s # %s\n", name, enc, c.Source(key))
	}
	return b.Bytes(), nil
}

// encodeValue writes one TOML value, leaving quoting rules to go-toml.
func encodeValue(v any) (string, error) {
	out, err := gotoml.Marshal(map[string]any{"v": v})
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(out))
	return strings.TrimSpace(strings.TrimPrefix(s, "v =")), nil
}
