// Package metrics keeps the Prometheus metrics of one Letterbox process,
// in a registry of its own (never the global one: no global state, and
// tests run servers side by side), and serves them at /metrics. They are
// counted whether or not metrics.listen serves them, which costs an
// atomic add per read, write or event.
//
// What feeds them:
//   - connections and bytes: the connection registry (conntrack), through
//     Conns;
//   - logins: CountLogins, around the Authenticator the servers get;
//   - commands by name, with latency, and logins by connection: the
//     Observer that pop3 and imap call (Sessions);
//   - LMTP deliveries: the lmtp.Observer from LMTP;
//   - store errors: failed LMTP deliveries, and the store's own warnings
//     and errors (StoreLogger): failures it has no caller to return to,
//     such as a background sync;
//   - warnings and errors logged: CountLogs.
package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/conntrack"
)

// Metrics are the Prometheus metrics of one server process.
type Metrics struct {
	reg *prometheus.Registry

	openConns      *prometheus.GaugeVec
	connsTotal     *prometheus.CounterVec
	bytesIn        *prometheus.CounterVec
	bytesOut       *prometheus.CounterVec
	logins         *prometheus.CounterVec
	commands       *prometheus.HistogramVec
	deliveries     *prometheus.CounterVec
	deliveredBytes prometheus.Counter
	storeErrors    *prometheus.CounterVec
	logMessages    *prometheus.CounterVec
}

// Label values known in advance, so their series exist (at 0) from the
// start and a rate() over a fresh server works.
var (
	metricProtos     = []string{"pop3", "imap", "lmtp"}
	loginProtos      = []string{"pop3", "imap"}
	loginResults     = []string{"ok", "failed", "throttled", "error"}
	deliveryResults  = []string{"delivered", "unknown_user", "failed", "too_big"}
	storeErrorSource = []string{"store", "lmtp"}
)

// New returns the metrics of a process running version, all at zero.
func New(version string) *Metrics {
	const ns = "letterbox"
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		openConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "open_connections",
			Help: "Client connections open now, by protocol.",
		}, []string{"proto"}),
		connsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "connections_total",
			Help: "Client connections accepted, by protocol.",
		}, []string{"proto"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "received_bytes_total",
			Help: "Bytes received from clients (on the wire, TLS included), by protocol.",
		}, []string{"proto"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "sent_bytes_total",
			Help: "Bytes sent to clients (on the wire, TLS included), by protocol.",
		}, []string{"proto"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "logins_total",
			Help: "Password checks by protocol and result: ok, failed (unknown user or wrong password), throttled, error.",
		}, []string{"proto", "result"}),
		commands: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "command_duration_seconds",
			Help:    "Time to handle a client command, by protocol, command and result (ok or error).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"proto", "command", "result"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "lmtp_deliveries_total",
			Help: "LMTP recipients by result: delivered, unknown_user (550), failed (4xx, the MTA retries), too_big (552).",
		}, []string{"result"}),
		deliveredBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "lmtp_delivered_bytes_total",
			Help: "Bytes of the messages stored over LMTP, once per recipient.",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "store_errors_total",
			Help: "Mail store failures: source store is the store's own warnings and errors (e.g. a failed background sync), lmtp a delivery the store could not write.",
		}, []string{"source"}),
		logMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "log_messages_total",
			Help: "Log records at warn and error level, whether or not log.level lets them through.",
		}, []string{"level"}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: ns, Name: "build_info",
		Help: "Always 1; the labels tell the version running.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)

	m.reg.MustRegister(m.openConns, m.connsTotal, m.bytesIn, m.bytesOut, m.logins, m.commands,
		m.deliveries, m.deliveredBytes, m.storeErrors, m.logMessages, buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	for _, p := range metricProtos {
		m.Conns(p)
	}
	for _, p := range loginProtos {
		for _, r := range loginResults {
			m.logins.WithLabelValues(p, r)
		}
	}
	for _, r := range deliveryResults {
		m.deliveries.WithLabelValues(r)
	}
	for _, s := range storeErrorSource {
		m.storeErrors.WithLabelValues(s)
	}
	for _, l := range []string{"warn", "error"} {
		m.logMessages.WithLabelValues(l)
	}
	return m
}

// Conns returns the connection counters of proto, for the connection
// registry.
func (m *Metrics) Conns(proto string) conntrack.Meter {
	return conntrack.Meter{
		Accepted: m.connsTotal.WithLabelValues(proto),
		Open:     m.openConns.WithLabelValues(proto),
		BytesIn:  m.bytesIn.WithLabelValues(proto),
		BytesOut: m.bytesOut.WithLabelValues(proto),
	}
}

// Handler serves /metrics, and /healthz for load balancers and monitors.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Registry:            m.reg,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	return mux
}

// Authenticator is what the protocol servers check passwords with: the
// method set of pop3.Authenticator and imap's Authenticator.
type Authenticator interface {
	Authenticate(ctx context.Context, username, password string, remote netip.Addr) (string, error)
}

var _ Authenticator = (*auth.Authenticator)(nil)

// countingAuth counts logins per protocol and passes everything else
// through: errors unchanged (the servers match auth.ErrInvalidCredentials
// and auth.ErrThrottled), the failure delay done inside auth.
type countingAuth struct {
	inner                         Authenticator
	ok, failed, throttled, errors prometheus.Counter
}

// CountLogins wraps a protocol server's Authenticator to count its
// logins by result: ok, failed, throttled, error. Errors pass through
// unchanged.
func (m *Metrics) CountLogins(proto string, a Authenticator) Authenticator {
	return &countingAuth{
		inner:     a,
		ok:        m.logins.WithLabelValues(proto, "ok"),
		failed:    m.logins.WithLabelValues(proto, "failed"),
		throttled: m.logins.WithLabelValues(proto, "throttled"),
		errors:    m.logins.WithLabelValues(proto, "error"),
	}
}

func (a *countingAuth) Authenticate(ctx context.Context, username, password string, remote netip.Addr) (string, error) {
	name, err := a.inner.Authenticate(ctx, username, password, remote)
	switch {
	case err == nil:
		a.ok.Inc()
	case errors.Is(err, auth.ErrInvalidCredentials):
		a.failed.Inc()
	case errors.Is(err, auth.ErrThrottled):
		a.throttled.Inc()
	case errors.Is(err, context.Canceled):
		// The client went away before an answer: no login attempt.
	default:
		a.errors.Inc()
	}
	return name, err
}

// countingHandler counts log records at warn and above, then hands them
// to the wrapped handler if its level lets them through.
type countingHandler struct {
	inner slog.Handler
	count func(slog.Level)
}

func (h countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.inner.Enabled(ctx, l)
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.count(r.Level)
	}
	if !h.inner.Enabled(ctx, r.Level) {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{inner: h.inner.WithAttrs(as), count: h.count}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{inner: h.inner.WithGroup(name), count: h.count}
}

// CountLogs returns log with its warnings and errors counted in
// log_messages_total, whether or not log's level lets them through.
func (m *Metrics) CountLogs(log *slog.Logger) *slog.Logger {
	warn, errs := m.logMessages.WithLabelValues("warn"), m.logMessages.WithLabelValues("error")
	return slog.New(countingHandler{inner: log.Handler(), count: func(l slog.Level) {
		if l >= slog.LevelError {
			errs.Inc()
		} else {
			warn.Inc()
		}
	}})
}

// StoreLogger returns the logger for store.Options.Logger: the store logs
// only what it cannot return to a caller, so each of its warnings and
// errors is a store error.
func (m *Metrics) StoreLogger(log *slog.Logger) *slog.Logger {
	c := m.storeErrors.WithLabelValues("store")
	return slog.New(countingHandler{inner: log.Handler(), count: func(slog.Level) { c.Inc() }})
}
