// Package config loads Letterbox's configuration from four layers, each
// overriding the one before: the embedded defaults (defaults.toml), a TOML
// file (--config or LETTERBOX_CONFIG; there is no implicit file), LETTERBOX_*
// environment variables ("__" nests: LETTERBOX_AUTH__ALLOW_INSECURE), and
// command-line flags (--auth.allow_insecure), one per key.
//
// Every key is known from the defaults, so a key the defaults lack is an
// error, and every error names the key and the layer it came from.
package config

import (
	"log/slog"
	"os"
	"time"
)

// Config is the effective configuration. Paths are absolute.
type Config struct {
	// File is the config file that was read, "" when there was none.
	File string

	DataDir    string
	Hostname   string // never empty: os.Hostname() fills in ""
	Server     Server
	Log        Log
	TLS        TLS
	Auth       Auth
	Mail       Mail
	POP3       POP3
	IMAP       IMAP
	LMTP       LMTP
	Metrics    Metrics
	Control    Control
	Autoconfig Autoconfig

	sources map[string]string // key → layer its value came from
}

// Source names the layer a key's value came from: "default", the config
// file's path, "env LETTERBOX_…" or "flag --…".
func (c *Config) Source(key string) string { return c.sources[key] }

// Server configures the process as a whole.
type Server struct {
	// DrainTimeout bounds a graceful stop: sessions get this long to
	// finish, then they are cut off.
	DrainTimeout time.Duration
}

// Log configures the process logger.
type Log struct {
	Level  slog.Level
	Format string // "text" or "json"
}

// TLS configures certificates for STARTTLS/STLS and implicit-TLS ports.
type TLS struct {
	// CertFile and KeyFile are both set or both empty; empty means a
	// self-signed certificate under DataDir/tls.
	CertFile   string
	KeyFile    string
	MinVersion uint16 // tls.VersionTLS12 or tls.VersionTLS13
}

// SelfSigned reports whether no certificate was configured.
func (t TLS) SelfSigned() bool { return t.CertFile == "" && t.KeyFile == "" }

// Auth configures the authenticator.
type Auth struct {
	UsersFile             string
	AllowInsecure         bool
	AllowInsecureLoopback bool
	FailDelay             time.Duration
	ThrottleFailures      int // 0: no throttling
	ThrottleWindow        time.Duration
	LoginCacheTTL         time.Duration // 0: no login cache
}

// Mail says where users' Maildirs are.
type Mail struct {
	// Path is an absolute template with {user}, {localpart} or {domain}.
	Path string
}

// POP3 configures the POP3 server. Empty listen lists disable a listener.
type POP3 struct {
	Listen              []string
	ListenTLS           []string
	MaxConnections      int
	MaxConnectionsPerIP int
	IdleTimeout         time.Duration
	CommandTimeout      time.Duration
	MaxLineLength       int
	MaxBadCommands      int
}

// IMAP configures the IMAP server. Empty listen lists disable a listener.
type IMAP struct {
	Listen                []string
	ListenTLS             []string
	MaxConnections        int
	MaxConnectionsPerIP   int
	MaxConnectionsPerUser int
	IdleTimeout           time.Duration
	IdleKeepalive         time.Duration
	CommandTimeout        time.Duration
	AppendLimit           int64
	MaxLineLength         int
	QuotaStorage          int64
	QuotaMessages         int64
}

// LMTP configures delivery over LMTP (RFC 2033). It is on when Socket or
// Listen is set.
type LMTP struct {
	// Socket is the absolute path of a unix socket, "" for none.
	Socket     string
	SocketMode os.FileMode
	// Listen lists TCP addresses; loopback only unless AllowRemote.
	Listen         []string
	AllowRemote    bool
	MaxMessageSize int64
	MaxRecipients  int
	// Timeout is the idle time allowed between commands and the time one
	// message transfer may take.
	Timeout             time.Duration
	CommandTimeout      time.Duration
	MaxConnections      int
	MaxConnectionsPerIP int
}

// Enabled reports whether LMTP has a listener.
func (l LMTP) Enabled() bool { return l.Socket != "" || len(l.Listen) > 0 }

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is a host:port, "" for off; loopback only unless AllowRemote.
	Listen      string
	AllowRemote bool
}

// Control configures the admin socket of a running server.
type Control struct {
	// Socket is the absolute path of its unix socket, "" for none.
	Socket string
}

// Autoconfig configures the listener that tells mail clients how to
// connect. It is on when Listen or ListenTLS is set.
type Autoconfig struct {
	Listen    []string // plain HTTP
	ListenTLS []string // HTTPS
	// Hostname is the server name clients connect to; never empty.
	Hostname string
	// SMTP is the submission server clients send with: host and port.
	SMTPHost string
	SMTPPort int
	// Login is "address" or "localpart".
	Login string
}

// Enabled reports whether autoconfig has a listener.
func (a Autoconfig) Enabled() bool { return len(a.Listen)+len(a.ListenTLS) > 0 }

// Minimum idle timeouts the protocols require of servers.
const (
	// RFC 1939 §3: an autologout timer "MUST be of at least 10 minutes".
	MinPOP3IdleTimeout = 10 * time.Minute
	// RFC 9051 §5.4: an inactivity timer "MUST be at least 30 minutes".
	MinIMAPIdleTimeout = 30 * time.Minute
)
