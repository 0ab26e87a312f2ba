package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lmtp"
)

// metricValue reads one counter or gauge.
func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge: %v", &m)
	return 0
}

// scrape returns what /metrics serves.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestMetricsEndpoint(t *testing.T) {
	m := New("test")
	out := scrape(t, m)
	for _, want := range []string{
		`letterbox_open_connections{proto="imap"} 0`,
		`letterbox_connections_total{proto="lmtp"} 0`,
		`letterbox_logins_total{proto="pop3",result="failed"} 0`,
		`letterbox_lmtp_deliveries_total{result="delivered"} 0`,
		`letterbox_store_errors_total{source="store"} 0`,
		`letterbox_build_info{`,
		`go_goroutines `,
		`process_open_fds `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in /metrics", want)
		}
	}
	rec := httptest.NewRecorder()
	m.Handler(slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Errorf("/healthz: %d %q", rec.Code, rec.Body)
	}
	// Two registries side by side: no global state.
	New("test")
}

func TestCountingAuth(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	hash, err := auth.HashPassword("secret", 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.AddUser(users, "alice", hash); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Options{UsersFile: users, Logger: slog.New(slog.DiscardHandler), FailDelay: -1, ThrottleFailures: 2})
	if err != nil {
		t.Fatal(err)
	}
	m := New("test")
	ca := m.CountLogins("pop3", a)
	ip := netip.MustParseAddr("192.0.2.1")
	ctx := context.Background()
	if name, err := ca.Authenticate(ctx, "ALICE", "secret", ip); err != nil || name != "alice" {
		t.Fatalf("login: %q %v", name, err)
	}
	for range 2 {
		if _, err := ca.Authenticate(ctx, "alice", "wrong", ip); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := ca.Authenticate(ctx, "alice", "secret", ip); !errors.Is(err, auth.ErrThrottled) {
		t.Fatalf("after 2 failures: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	ca.Authenticate(canceled, "alice", "secret", netip.MustParseAddr("192.0.2.2"))
	for result, want := range map[string]float64{"ok": 1, "failed": 2, "throttled": 1, "error": 0} {
		if got := metricValue(t, m.logins.WithLabelValues("pop3", result)); got != want {
			t.Errorf("logins %s = %v, want %v", result, got, want)
		}
	}
	if got := metricValue(t, m.logins.WithLabelValues("imap", "ok")); got != 0 {
		t.Errorf("imap logins %v", got)
	}
}

// Warnings and errors are counted even when log.level hides them; the
// store's are store errors.
func TestCountingLogs(t *testing.T) {
	m := New("test")
	var buf strings.Builder
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))
	log := m.CountLogs(base).With("proto", "pop3")
	log.Info("info")
	log.Warn("hidden warning")
	log.Error("shown error")
	st := m.StoreLogger(m.CountLogs(base))
	st.Warn("store: fsync cur/")
	st.Debug("store: cannot watch")

	if got := metricValue(t, m.logMessages.WithLabelValues("warn")); got != 2 {
		t.Errorf("warn records %v, want 2", got)
	}
	if got := metricValue(t, m.logMessages.WithLabelValues("error")); got != 1 {
		t.Errorf("error records %v, want 1", got)
	}
	if got := metricValue(t, m.storeErrors.WithLabelValues("store")); got != 1 {
		t.Errorf("store errors %v, want 1", got)
	}
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, `msg="shown error" proto=pop3`) {
		t.Errorf("log output %q", out)
	}
}

func TestObserverCommands(t *testing.T) {
	m := New("test")
	obs := m.Sessions("imap", nil)
	obs.Command(nil, "uid  fetch", 3*time.Millisecond, true)
	obs.Command(nil, "UID FETCH", time.Millisecond, false)
	obs.Command(nil, "XYZZY-"+strings.Repeat("A", 100), time.Millisecond, true)
	// Commands added to the server after the first list of known ones.
	for _, name := range []string{"COMPRESS", "GETQUOTAROOT", "UID SORT", "THREAD", "CANCELUPDATE"} {
		obs.Command(nil, name, time.Millisecond, true)
	}
	m.Sessions("pop3", nil).Command(nil, "STLS", time.Millisecond, true)
	out := scrape(t, m)
	for _, want := range []string{
		`letterbox_command_duration_seconds_count{command="COMPRESS",proto="imap",result="ok"} 1`,
		`letterbox_command_duration_seconds_count{command="GETQUOTAROOT",proto="imap",result="ok"} 1`,
		`letterbox_command_duration_seconds_count{command="UID SORT",proto="imap",result="ok"} 1`,
		`letterbox_command_duration_seconds_count{command="THREAD",proto="imap",result="ok"} 1`,
		`letterbox_command_duration_seconds_count{command="CANCELUPDATE",proto="imap",result="ok"} 1`,
		`letterbox_command_duration_seconds_count{command="STLS",proto="pop3",result="ok"} 1`,
		`letterbox_command_duration_seconds_count{command="UID FETCH",proto="imap",result="ok"} 1`,
		`letterbox_command_duration_seconds_count{command="UID FETCH",proto="imap",result="error"} 1`,
		`letterbox_command_duration_seconds_count{command="OTHER",proto="imap",result="ok"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, grepLines(out, "command_duration_seconds_count"))
		}
	}
}

// recorder is a UserRecorder for the tests.
type recorder map[net.Conn]string

func (r recorder) SetUser(c net.Conn, user string) { r[c] = user }

func TestObserverLogins(t *testing.T) {
	m := New("test")
	users := recorder{}
	var c net.Conn = &net.TCPConn{}
	m.Sessions("pop3", users).Authenticated(c, "alice")
	if users[c] != "alice" {
		t.Errorf("recorded %v", users)
	}
	m.Sessions("pop3", nil).Authenticated(c, "bob") // nobody to tell: no panic
}

func TestLMTPObserver(t *testing.T) {
	m := New("test")
	o := m.LMTP()
	o.Recipient(lmtp.Delivered, 100)
	o.Recipient(lmtp.Delivered, 50)
	o.Recipient(lmtp.UnknownUser, 0)
	o.Recipient(lmtp.TooBig, 0)
	o.Recipient(lmtp.StoreFailed, 10)
	o.Recipient(lmtp.NotReceived, 0)
	for result, want := range map[string]float64{"delivered": 2, "unknown_user": 1, "too_big": 1, "failed": 2} {
		if got := metricValue(t, m.deliveries.WithLabelValues(result)); got != want {
			t.Errorf("deliveries %s = %v, want %v", result, got, want)
		}
	}
	if got := metricValue(t, m.deliveredBytes); got != 150 {
		t.Errorf("delivered bytes %v", got)
	}
	if got := metricValue(t, m.storeErrors.WithLabelValues("lmtp")); got != 1 {
		t.Errorf("lmtp store errors %v", got)
	}
}
