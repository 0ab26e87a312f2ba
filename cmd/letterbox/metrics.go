package main

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
)

// metrics are the Prometheus metrics of one server process, in a registry
// of their own (never prometheus.DefaultRegisterer: no global state, and
// tests can run servers side by side). They are exported over HTTP when
// metrics.listen is set; they are counted either way, which costs an
// atomic add per read, write or event.
//
// Sources:
//   - connections and bytes: trackedListener, wrapped around each raw
//     listener (conns.go);
//   - logins: countingAuth, the Authenticator the protocol servers get;
//   - LMTP deliveries: the LMTP backend (lmtp.go);
//   - store errors: failed LMTP deliveries, and the store's own log
//     records at warn or above (failures it has no caller to return to,
//     such as a background sync), counted by a slog handler on the store's
//     logger; session-level failures show in log_messages_total, and in
//     command_duration_seconds with result "error";
//   - commands by name with latency: protoObserver, which pop3 and imap
//     call through their Observer field (observer.go).
type metrics struct {
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

func newMetrics() *metrics {
	const ns = "letterbox"
	m := &metrics{
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
	buildInfo.WithLabelValues(versionString(), runtime.Version()).Set(1)

	m.reg.MustRegister(m.openConns, m.connsTotal, m.bytesIn, m.bytesOut, m.logins, m.commands,
		m.deliveries, m.deliveredBytes, m.storeErrors, m.logMessages, buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	for _, p := range metricProtos {
		m.forProto(p)
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

func (m *metrics) forProto(proto string) protoMetrics {
	return protoMetrics{
		connsTotal:   m.connsTotal.WithLabelValues(proto),
		connsCurrent: m.openConns.WithLabelValues(proto),
		bytesIn:      m.bytesIn.WithLabelValues(proto),
		bytesOut:     m.bytesOut.WithLabelValues(proto),
	}
}

// handler serves /metrics, and /healthz for load balancers and monitors.
func (m *metrics) handler(log *slog.Logger) http.Handler {
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

// newMetricsServer is the HTTP server of the metrics endpoint.
func newMetricsServer(m *metrics, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           m.handler(log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// authenticator is what the protocol servers check passwords with: the
// method set of pop3.Authenticator and imap's Authenticator.
type authenticator interface {
	Authenticate(ctx context.Context, username, password string, remote netip.Addr) (string, error)
}

var _ authenticator = (*auth.Authenticator)(nil)

// countingAuth counts logins per protocol and passes everything else
// through: errors unchanged (the servers match auth.ErrInvalidCredentials
// and auth.ErrThrottled), the failure delay done inside auth.
type countingAuth struct {
	inner                         authenticator
	ok, failed, throttled, errors prometheus.Counter
}

func (m *metrics) countLogins(proto string, a authenticator) authenticator {
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

// countLogs returns log with its warnings and errors counted in
// log_messages_total.
func (m *metrics) countLogs(log *slog.Logger) *slog.Logger {
	warn, errs := m.logMessages.WithLabelValues("warn"), m.logMessages.WithLabelValues("error")
	return slog.New(countingHandler{inner: log.Handler(), count: func(l slog.Level) {
		if l >= slog.LevelError {
			errs.Inc()
		} else {
			warn.Inc()
		}
	}})
}

// storeLogger returns the logger for store.Options.Logger: the store logs
// only what it cannot return to a caller, so each of its warnings and
// errors is a store error.
func (m *metrics) storeLogger(log *slog.Logger) *slog.Logger {
	c := m.storeErrors.WithLabelValues("store")
	return slog.New(countingHandler{inner: log.Handler(), count: func(slog.Level) { c.Inc() }})
}
