package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/conntrack"
)

var metricsAddrRE = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)

// scrapeHTTP fetches /metrics from a running server.
func scrapeHTTP(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// sample returns the value of one series in a scrape, -1 if absent.
func sample(out, series string) float64 {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// smtpCode is the reply code of an LMTP client error; 250 for none.
func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	if err == nil {
		return 250
	}
	return -1
}

// popClient is a POP3 conversation held open.
type popClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (p *popClient) cmd(line, wantPrefix string) string {
	p.t.Helper()
	if line != "" {
		io.WriteString(p.c, line+"\r\n")
	}
	got, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("after %q: %v", line, err)
	}
	if !strings.HasPrefix(got, wantPrefix) {
		p.t.Fatalf("after %q: %q, want %q", line, got, wantPrefix)
	}
	return got
}

// The whole operations side on a real server: a message delivered over
// LMTP, fetched over POP3, the session listed by "letterbox who", and
// every step counted on /metrics.
func TestServeOps(t *testing.T) {
	e := newTestEnv(t)
	sr := e.startServe(nil, append(loopbackFlags, "--metrics.listen=127.0.0.1:0", "--lmtp.socket=lmtp")...)
	m := passwordRE.FindStringSubmatch(sr.stdout.String())
	if m == nil {
		t.Fatalf("no demo password:\n%s", sr.stdout.String())
	}
	pw := m[1]
	mm := metricsAddrRE.FindStringSubmatch(sr.stderr.String())
	if mm == nil {
		t.Fatalf("metrics address not logged:\n%s", sr.stderr.String())
	}
	metricsAddr := mm[1]
	sock := filepath.Join(e.dataDir(), "lmtp")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("LMTP socket: %v %v", fi, err)
	}

	// LMTP: one known recipient, one unknown.
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	lc := smtp.NewClientLMTP(conn)
	defer lc.Close()
	if err := lc.Hello("postfix.test"); err != nil {
		t.Fatal(err)
	}
	if err := lc.Mail("ann@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := lc.Rcpt("demo@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := lc.Rcpt("ghost@example.org", nil); smtpCode(err) != 550 {
		t.Errorf("unknown recipient: %v", err)
	}
	w, err := lc.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: over LMTP\r\n\r\nHello demo.\r\n")
	if _, err := w.CloseWithLMTPResponse(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	// The LMTP connection stays open, idle, as Postfix's do; the drain
	// at the end must not wait for it.

	// POP3 over implicit TLS sees the message.
	tc, err := tls.Dial("tcp", sr.listeners()["pop3/implicit"], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(20 * time.Second))
	p := &popClient{t: t, c: tc, r: bufio.NewReader(tc)}
	p.cmd("", "+OK")
	p.cmd("USER demo", "+OK")
	p.cmd("PASS "+pw, "+OK")
	// The welcome message of the first start, and the delivery.
	p.cmd("STAT", "+OK 2 ")
	p.cmd("RETR 2", "+OK")
	for {
		line := p.cmd("", "")
		if line == ".\r\n" {
			break
		}
	}

	// who lists both connections, with the user pop3 reported.
	r := e.run("", "who")
	if r.code != exitOK {
		t.Fatalf("who: exit %d: %s", r.code, r.stderr)
	}
	var popLine, lmtpLine string
	for _, l := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(l)
		if len(f) > 2 && f[1] == "pop3" {
			popLine = l
		}
		if len(f) > 2 && f[1] == "lmtp" {
			lmtpLine = l
		}
	}
	if f := strings.Fields(popLine); len(f) < 5 || f[2] != "demo" || f[3] != tc.LocalAddr().String() || !strings.Contains(popLine, "(tls)") {
		t.Errorf("who, pop3 line %q:\n%s", popLine, r.stdout)
	}
	if f := strings.Fields(lmtpLine); len(f) < 5 || f[2] != "-" || f[4] != sock {
		t.Errorf("who, lmtp line %q:\n%s", lmtpLine, r.stdout)
	}
	if strings.Contains(r.stderr, "pop3 server does not report logins") {
		t.Errorf("who: pop3 reports logins, but: %q", r.stderr)
	}
	r = e.run("", "who", "--json")
	var sessions []conntrack.Session
	if err := json.Unmarshal([]byte(r.stdout), &sessions); err != nil || len(sessions) != 2 {
		t.Errorf("who --json: %v %q", err, r.stdout)
	}
	r = e.run("", "kick", "demo")
	if r.code != exitOK || !strings.Contains(r.stdout, "demo: 1 session(s) disconnected") {
		t.Errorf("kick: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The kicked session is gone: the next read sees the end.
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := tc.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("kicked connection still open (read %d bytes, %v)", n, err)
	}
	tc.Close()

	// Every step moved its counter.
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for {
		out = scrapeHTTP(t, metricsAddr)
		if sample(out, `letterbox_open_connections{proto="pop3"}`) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for series, want := range map[string]float64{
		`letterbox_open_connections{proto="pop3"}`:               0,
		`letterbox_open_connections{proto="lmtp"}`:               1,
		`letterbox_connections_total{proto="pop3"}`:              1,
		`letterbox_connections_total{proto="lmtp"}`:              1,
		`letterbox_logins_total{proto="pop3",result="ok"}`:       1,
		`letterbox_logins_total{proto="pop3",result="failed"}`:   0,
		`letterbox_lmtp_deliveries_total{result="delivered"}`:    1,
		`letterbox_lmtp_deliveries_total{result="unknown_user"}`: 1,
	} {
		if got := sample(out, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	for _, series := range []string{
		`letterbox_sent_bytes_total{proto="pop3"}`, `letterbox_received_bytes_total{proto="pop3"}`,
		`letterbox_received_bytes_total{proto="lmtp"}`, `letterbox_lmtp_delivered_bytes_total`,
	} {
		if got := sample(out, series); got <= 0 {
			t.Errorf("%s = %v, want > 0", series, got)
		}
	}

	start := time.Now()
	if code := sr.stop(t); code != exitOK {
		t.Errorf("exit %d:\n%s", code, sr.stderr.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v with an idle LMTP connection", d)
	}
	for _, s := range []string{sock, filepath.Join(e.dataDir(), "control")} {
		if _, err := os.Stat(s); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", s, err)
		}
	}
	if r := e.run("", "who"); r.code != exitUnavailable || !strings.Contains(r.stderr, "not running") {
		t.Errorf("who without a server: exit %d %q", r.code, r.stderr)
	}
}

// A second server on the same data directory refuses to start instead of
// taking over the first one's control socket.
func TestServeControlSocketInUse(t *testing.T) {
	e := newTestEnv(t)
	e.startServe(nil, loopbackFlags...)
	r := e.run("", append([]string{"serve"}, loopbackFlags...)...)
	if r.code != exitFailure || !strings.Contains(r.stderr, "in use by another running server") {
		t.Errorf("second serve: exit %d\n%s", r.code, r.stderr)
	}
}
