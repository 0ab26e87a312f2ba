package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/v2"
)

// decoder turns merged values into typed fields. Values arrive typed from
// TOML and flags but as strings from the environment, so every getter takes
// both. Problems are collected, not returned, so one run reports them all.
type decoder struct {
	k    *koanf.Koanf
	src  map[string]string
	used map[string]bool // lets a test prove every key is decoded
	errs []error
}

func (d *decoder) decode(dataDirBase string) *Config {
	c := &Config{}
	c.DataDir = d.dir("data_dir", dataDirBase)
	c.Hostname = d.hostname("hostname")
	c.Server.DrainTimeout = d.duration("server.drain_timeout", 0, time.Hour)

	c.Log.Level = d.level("log.level")
	c.Log.Format = d.oneOf("log.format", "text", "json")

	c.TLS.CertFile = d.path("tls.cert_file", c.DataDir)
	c.TLS.KeyFile = d.path("tls.key_file", c.DataDir)
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		key := "tls.key_file"
		if c.TLS.CertFile == "" {
			key = "tls.cert_file"
		}
		d.fail(key, errors.New("tls.cert_file and tls.key_file must be set together"))
	}
	switch d.oneOf("tls.min_version", "1.2", "1.3") {
	case "1.3":
		c.TLS.MinVersion = tls.VersionTLS13
	default:
		c.TLS.MinVersion = tls.VersionTLS12
	}

	c.Auth.UsersFile = d.path("auth.users_file", c.DataDir)
	if c.Auth.UsersFile == "" {
		d.fail("auth.users_file", errors.New("must not be empty"))
	}
	c.Auth.AllowInsecure = d.bool("auth.allow_insecure")
	c.Auth.AllowInsecureLoopback = d.bool("auth.allow_insecure_loopback")
	c.Auth.FailDelay = d.duration("auth.fail_delay", 0, time.Minute)
	c.Auth.ThrottleFailures = d.int("auth.throttle_failures", 0)
	c.Auth.ThrottleWindow = d.duration("auth.throttle_window", time.Second, 0)
	c.Auth.LoginCacheTTL = d.duration("auth.login_cache_ttl", 0, 24*time.Hour)

	c.Mail.Path = d.template("mail.path", c.DataDir)

	c.POP3.Listen = d.listen("pop3.listen")
	c.POP3.ListenTLS = d.listen("pop3.listen_tls")
	c.POP3.MaxConnections = d.int("pop3.max_connections", 1)
	c.POP3.MaxConnectionsPerIP = d.int("pop3.max_connections_per_ip", 1)
	c.POP3.IdleTimeout = d.duration("pop3.idle_timeout", MinPOP3IdleTimeout, 0)
	c.POP3.CommandTimeout = d.duration("pop3.command_timeout", time.Second, time.Hour)
	// RFC 2449 §4: commands may be up to 255 octets including CRLF.
	c.POP3.MaxLineLength = d.int("pop3.max_line_length", 255)
	c.POP3.MaxBadCommands = d.int("pop3.max_bad_commands", 1)

	c.IMAP.Listen = d.listen("imap.listen")
	c.IMAP.ListenTLS = d.listen("imap.listen_tls")
	c.IMAP.MaxConnections = d.int("imap.max_connections", 1)
	c.IMAP.MaxConnectionsPerIP = d.int("imap.max_connections_per_ip", 1)
	c.IMAP.MaxConnectionsPerUser = d.int("imap.max_connections_per_user", 1)
	c.IMAP.IdleTimeout = d.duration("imap.idle_timeout", MinIMAPIdleTimeout, 0)
	c.IMAP.IdleKeepalive = d.duration("imap.idle_keepalive", time.Second, 29*time.Minute)
	c.IMAP.CommandTimeout = d.duration("imap.command_timeout", time.Second, time.Hour)
	c.IMAP.QuotaStorage = d.int64("imap.quota_storage", 0, math.MaxInt64)
	c.IMAP.QuotaMessages = d.int64("imap.quota_messages", 0, math.MaxInt64)
	c.IMAP.AppendLimit = d.int64("imap.append_limit", 1, math.MaxInt64)
	// RFC 7162 §4: servers SHOULD accept command lines of 8192 octets.
	c.IMAP.MaxLineLength = int(d.int64("imap.max_line_length", 8192, 51200))

	c.LMTP.Socket = d.path("lmtp.socket", c.DataDir)
	c.LMTP.SocketMode = d.fileMode("lmtp.socket_mode")
	c.LMTP.AllowRemote = d.bool("lmtp.allow_remote")
	c.LMTP.Listen = d.listen("lmtp.listen")
	if !c.LMTP.AllowRemote {
		// LMTP has no authentication: whoever connects can deliver.
		d.loopbackOnly("lmtp.listen", c.LMTP.Listen, "lmtp.allow_remote")
	}
	c.LMTP.MaxMessageSize = d.int64("lmtp.max_message_size", 1, math.MaxInt64)
	c.LMTP.MaxRecipients = d.int("lmtp.max_recipients", 1)
	c.LMTP.Timeout = d.duration("lmtp.timeout", time.Second, 0)
	c.LMTP.CommandTimeout = d.duration("lmtp.command_timeout", time.Second, time.Hour)
	c.LMTP.MaxConnections = d.int("lmtp.max_connections", 1)
	c.LMTP.MaxConnectionsPerIP = d.int("lmtp.max_connections_per_ip", 1)

	c.Metrics.AllowRemote = d.bool("metrics.allow_remote")
	if a := strings.TrimSpace(d.string("metrics.listen")); a != "" {
		d.checkAddr("metrics.listen", a)
		c.Metrics.Listen = a
		if !c.Metrics.AllowRemote {
			d.loopbackOnly("metrics.listen", []string{a}, "metrics.allow_remote")
		}
	}

	c.Control.Socket = d.path("control.socket", c.DataDir)
	if c.Control.Socket != "" && c.Control.Socket == c.LMTP.Socket {
		d.fail("control.socket", errors.New("must differ from lmtp.socket"))
	}

	c.Autoconfig.Listen = d.listen("autoconfig.listen")
	c.Autoconfig.ListenTLS = d.listen("autoconfig.listen_tls")
	c.Autoconfig.Hostname = strings.TrimSpace(d.string("autoconfig.hostname"))
	if c.Autoconfig.Hostname == "" {
		c.Autoconfig.Hostname = c.Hostname
	} else {
		d.dnsName("autoconfig.hostname", c.Autoconfig.Hostname)
	}
	c.Autoconfig.SMTPHost, c.Autoconfig.SMTPPort = d.hostPort("autoconfig.smtp")
	if c.Autoconfig.SMTPHost == "" {
		c.Autoconfig.SMTPHost = c.Autoconfig.Hostname
	}
	if c.Autoconfig.Enabled() && c.Autoconfig.SMTPPort == 0 {
		d.fail("autoconfig.smtp", errors.New(`required when autoconfig is on: clients need an outgoing server (Letterbox does not send mail); e.g. ":465" or "smtp.example.org:587"`))
	}
	c.Autoconfig.Login = d.oneOf("autoconfig.login", "address", "localpart")

	var metricsListen []string
	if c.Metrics.Listen != "" {
		metricsListen = []string{c.Metrics.Listen}
	}
	d.uniqueListeners([]keyed{
		{"pop3.listen", c.POP3.Listen}, {"pop3.listen_tls", c.POP3.ListenTLS},
		{"imap.listen", c.IMAP.Listen}, {"imap.listen_tls", c.IMAP.ListenTLS},
		{"lmtp.listen", c.LMTP.Listen}, {"metrics.listen", metricsListen},
		{"autoconfig.listen", c.Autoconfig.Listen}, {"autoconfig.listen_tls", c.Autoconfig.ListenTLS},
	})
	return c
}

func (d *decoder) get(key string) any {
	d.used[key] = true
	return d.k.Get(key)
}

func (d *decoder) fail(key string, err error) {
	d.errs = append(d.errs, &Error{Key: key, Source: d.src[key], Value: d.k.Get(key), Err: err})
}

func (d *decoder) string(key string) string {
	switch v := d.get(key).(type) {
	case string:
		return v
	default:
		d.fail(key, fmt.Errorf("want a string, not %T", v))
		return ""
	}
}

func (d *decoder) bool(key string) bool {
	switch v := d.get(key).(type) {
	case bool:
		return v
	case string:
		b, err := strconv.ParseBool(v)
		if err != nil {
			d.fail(key, errors.New("want true or false"))
		}
		return b
	default:
		d.fail(key, fmt.Errorf("want true or false, not %T", v))
		return false
	}
}

func (d *decoder) int64(key string, lo, hi int64) int64 {
	var n int64
	switch v := d.get(key).(type) {
	case int64:
		n = v
	case string:
		var err error
		if n, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			d.fail(key, errors.New("want an integer"))
			return 0
		}
	default:
		d.fail(key, fmt.Errorf("want an integer, not %T", v))
		return 0
	}
	if n < lo || n > hi {
		d.fail(key, fmt.Errorf("must be between %d and %d", lo, hi))
		return 0
	}
	return n
}

func (d *decoder) int(key string, lo int64) int {
	return int(d.int64(key, lo, math.MaxInt32))
}

// duration parses a Go duration ("90s", "15m", "1h30m"); hi 0 means no upper
// bound.
func (d *decoder) duration(key string, lo, hi time.Duration) time.Duration {
	s, ok := d.get(key).(string)
	if !ok {
		d.fail(key, errors.New(`want a duration string such as "30s" or "15m"`))
		return 0
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	switch {
	case err != nil:
		d.fail(key, errors.New(`want a duration such as "30s" or "15m"`))
	case v < lo:
		d.fail(key, fmt.Errorf("must be at least %s", FormatDuration(lo)))
	case hi > 0 && v > hi:
		d.fail(key, fmt.Errorf("must be at most %s", FormatDuration(hi)))
	default:
		return v
	}
	return 0
}

func (d *decoder) oneOf(key string, allowed ...string) string {
	s := strings.ToLower(strings.TrimSpace(d.string(key)))
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	d.fail(key, fmt.Errorf("want one of %s", strings.Join(allowed, ", ")))
	return allowed[0]
}

func (d *decoder) level(key string) slog.Level {
	switch d.oneOf(key, "debug", "info", "warn", "error") {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// list accepts a TOML array, a flag's string slice, or an environment
// variable's comma-separated string ("" is the empty list).
func (d *decoder) list(key string) []string {
	var out []string
	switch v := d.get(key).(type) {
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				d.fail(key, fmt.Errorf("want a list of strings, found %T", e))
				return nil
			}
			out = append(out, s)
		}
	case []string:
		out = v
	case string:
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	default:
		d.fail(key, fmt.Errorf("want a list of strings, not %T", v))
	}
	if len(out) == 0 {
		return nil // one spelling of "disabled", whatever the layer
	}
	return out
}

// listen checks host:port pairs. The host must be empty (all addresses), an
// IP address or "localhost": resolving names when the config is read would
// make binding depend on DNS.
func (d *decoder) listen(key string) []string {
	addrs := d.list(key)
	for _, a := range addrs {
		d.checkAddr(key, a)
	}
	return addrs
}

// checkAddr checks one listen address; see listen.
func (d *decoder) checkAddr(key, a string) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		d.fail(key, fmt.Errorf("listen address %q: want host:port, [ipv6]:port or :port", a))
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		d.fail(key, fmt.Errorf("listen address %q: port must be a number 0-65535", a))
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			d.fail(key, fmt.Errorf("listen address %q: host must be an IP address, localhost or empty", a))
		}
	}
}

// loopbackOnly refuses addresses that are not loopback ("" is every
// address), for services without authentication.
func (d *decoder) loopbackOnly(key string, addrs []string, allowKey string) {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			continue // reported by checkAddr
		}
		if host == "localhost" {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
			continue
		}
		if host == "" {
			host = "all addresses"
		}
		d.fail(key, fmt.Errorf("listen address %q is not loopback (%s); set %s = true to allow that", a, host, allowKey))
	}
}

// fileMode parses an octal permission string such as "0660".
func (d *decoder) fileMode(key string) os.FileMode {
	s := strings.TrimSpace(d.string(key))
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 {
		d.fail(key, errors.New(`want octal permissions such as "0660"`))
		return 0
	}
	if v&0o600 != 0o600 {
		d.fail(key, errors.New("the owner needs read and write permission (0600)"))
	}
	return os.FileMode(v)
}

type keyed struct {
	key   string
	addrs []string
}

// uniqueListeners catches one address configured twice, which would only
// fail later at bind time. Port 0 is exempt: each bind gets its own port.
func (d *decoder) uniqueListeners(lists []keyed) {
	seen := make(map[string]string)
	for _, l := range lists {
		key := l.key
		for _, a := range l.addrs {
			host, port, err := net.SplitHostPort(a)
			if err != nil || port == "0" {
				continue
			}
			norm := net.JoinHostPort(host, port)
			if ip, err := netip.ParseAddr(host); err == nil {
				norm = net.JoinHostPort(ip.Unmap().String(), port)
			}
			if other, ok := seen[norm]; ok {
				d.fail(key, fmt.Errorf("listen address %q is also in %s", a, other))
			}
			seen[norm] = key
		}
	}
}

// dir returns an absolute directory; relative ones resolve against base.
func (d *decoder) dir(key, base string) string {
	p := strings.TrimSpace(d.string(key))
	if p == "" {
		d.fail(key, errors.New("must not be empty"))
		return base
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	return filepath.Clean(p)
}

// path returns "" for "", else an absolute path relative to dataDir.
func (d *decoder) path(key, dataDir string) string {
	p := strings.TrimSpace(d.string(key))
	if p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dataDir, p)
	}
	return filepath.Clean(p)
}

// template checks a mail path template's placeholders and makes it absolute.
func (d *decoder) template(key, dataDir string) string {
	p := d.path(key, dataDir)
	if err := checkTemplate(p); err != nil {
		d.fail(key, err)
	}
	return p
}

func checkTemplate(p string) error {
	named := false
	for rest := p; rest != ""; {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			break
		}
		if rest[i] == '}' {
			return errors.New(`unmatched "}"`)
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return errors.New(`unmatched "{"`)
		}
		switch name := rest[i : i+end+1]; name {
		case "{user}", "{localpart}":
			named = true
		case "{domain}":
		default:
			return fmt.Errorf("unknown placeholder %s; want {user}, {localpart} or {domain}", name)
		}
		rest = rest[i+end+1:]
	}
	if !named {
		return errors.New("must contain {user} or {localpart}, or all users would share one Maildir")
	}
	return nil
}

// hostname fills in the system name for "". It goes into Maildir file
// names, where "/" and ":" have meaning.
func (d *decoder) hostname(key string) string {
	h := strings.TrimSpace(d.string(key))
	if h == "" {
		var err error
		if h, err = os.Hostname(); err != nil || h == "" {
			h = "localhost"
		}
		return h
	}
	if strings.ContainsAny(h, "/:\\,") || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		d.fail(key, errors.New(`must not contain "/", ":", "\", ",", spaces or control characters`))
	}
	return h
}

// dnsName checks a host name clients are sent to.
func (d *decoder) dnsName(key, h string) {
	if strings.ContainsFunc(h, func(r rune) bool {
		return !(r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) {
		d.fail(key, fmt.Errorf("%q is not a host name (letters, digits, \"-\" and \".\" only)", h))
	}
}

// hostPort parses "host:port" or ":port"; "" is ("", 0).
func (d *decoder) hostPort(key string) (string, int) {
	s := strings.TrimSpace(d.string(key))
	if s == "" {
		return "", 0
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		d.fail(key, fmt.Errorf("%q: want host:port or :port", s))
		return "", 0
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		d.fail(key, fmt.Errorf("%q: port must be a number 1-65535", s))
		return "", 0
	}
	if host != "" {
		d.dnsName(key, host)
	}
	return host, int(p)
}

// FormatDuration writes d as the config does: "15m", not "15m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
