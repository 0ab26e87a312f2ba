package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gopop3 "github.com/knadh/go-pop3"
)

// Independent clients against the server: openssl s_client, curl, the
// knadh/go-pop3 library and Python's poplib. .ci/run installs the
// programs; a test skips, saying why, only where one is missing.

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (.ci/run installs it): %v", name, err)
	}
	return p
}

// TestOpenSSLClient is the session a person types into
// `openssl s_client -connect HOST:995 -quiet`: commands end in a bare LF.
func TestOpenSSLClient(t *testing.T) {
	bin := lookPath(t, "openssl")
	ts := newTestServer(t, noInsecure)
	ts.fill("alice")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "s_client", "-connect", ts.tlsAddr, "-quiet")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdout)
		for {
			l, err := r.ReadString('\n')
			if l != "" {
				lines <- l
			}
			if err != nil {
				return
			}
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("openssl ended early; stderr:\n%s", stderr.String())
			}
			if !strings.HasSuffix(l, "\r\n") {
				t.Fatalf("line %q does not end in CRLF", l)
			}
			return strings.TrimSuffix(l, "\r\n")
		case <-time.After(10 * time.Second):
			t.Fatalf("no reply from openssl; stderr:\n%s", stderr.String())
			return ""
		}
	}
	expect := func(want string) {
		t.Helper()
		for _, w := range strings.Split(want, "\n") {
			got := next()
			if p, ok := strings.CutSuffix(w, "…"); ok && strings.HasPrefix(got, p) {
				continue
			}
			if got != w {
				t.Fatalf("got %q, want %q", got, w)
			}
		}
	}
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(stdin, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}

	size := []int{len(msgDots), len(crlf(msgLF)), len(msgLong)}
	list := fmt.Sprintf("+OK 3 messages:\n1 %d\n2 %d\n3 %d\n.", size[0], size[1], size[2])
	expect("+OK POP3 server ready.")
	for _, s := range []step{
		{"USER alice", "+OK"},
		{"PASS secret", "+OK Logged in."},
		{"STAT", fmt.Sprintf("+OK 3 %d", size[0]+size[1]+size[2])},
		{"LIST", list},
		{"RETR 1", fmt.Sprintf("+OK %d octets\n", size[0]) + strings.ReplaceAll(strings.TrimSuffix(stuff(msgDots), "\r\n"), "\r\n", "\n") + "\n."},
		{"DELE 1", "+OK Marked to be deleted."},
		{"CAPA", capaAfter},
		{"RSET", "+OK"},
		{"LIST", list},
		{"QUIT", "+OK Logging out."},
	} {
		send(s.send)
		expect(s.expect)
	}
	if l, ok := <-lines; ok {
		t.Errorf("more output after QUIT: %q", l)
	}
	if err := cmd.Wait(); err != nil {
		t.Logf("openssl exited with %v; stderr:\n%s", err, stderr.String())
	}
	if ts.messageFile("alice", testFiles[0]) == "" {
		t.Error("DELE then RSET removed message 1")
	}
}

// stuff dot-stuffs a CRLF message.
func stuff(msg string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(msg, "\r\n") {
		if strings.HasPrefix(l, ".") {
			b.WriteString(".")
		}
		b.WriteString(l)
	}
	return b.String()
}

// TestCurl: curl fetches messages byte for byte over implicit TLS and over
// STLS, and lists the maildrop.
func TestCurl(t *testing.T) {
	bin := lookPath(t, "curl")
	ts := newTestServer(t, noInsecure)
	ts.fill("alice")
	_, port, _ := net.SplitHostPort(ts.addr)
	_, tlsPort, _ := net.SplitHostPort(ts.tlsAddr)
	curl := func(args ...string) []byte {
		t.Helper()
		args = append([]string{"-sS", "--max-time", "20", "-k", "--user", "alice:secret"}, args...)
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("curl %v: %v\n%s", args, err, stderr)
		}
		return out
	}
	for i, msg := range []string{msgDots, msgLF, msgLong} {
		got := curl(fmt.Sprintf("pop3s://127.0.0.1:%s/%d", tlsPort, i+1))
		if string(got) != crlf(msg) {
			t.Errorf("pop3s RETR %d:\n got %q\nwant %q", i+1, got, crlf(msg))
		}
	}
	// Plain port: --ssl-reqd makes curl use STLS.
	if got := curl("--ssl-reqd", fmt.Sprintf("pop3://127.0.0.1:%s/2", port)); string(got) != crlf(msgLF) {
		t.Errorf("pop3 + STLS RETR 2: got %q", got)
	}
	list := curl(fmt.Sprintf("pop3s://127.0.0.1:%s/", tlsPort))
	want := fmt.Sprintf("1 %d\r\n2 %d\r\n3 %d\r\n", len(msgDots), len(crlf(msgLF)), len(msgLong))
	if string(list) != want {
		t.Errorf("LIST via curl: got %q, want %q", list, want)
	}
}

// stlsDialer dials for go-pop3, which has no STLS: it reads the greeting,
// sends STLS, does the handshake, and hands the library the TLS connection
// with the greeting put back in front.
type stlsDialer struct{ t *testing.T }

func (d stlsDialer) Dial(network, addr string) (net.Conn, error) {
	conn, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	greeting, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(conn, "STLS\r\n"); err != nil {
		return nil, err
	}
	if reply, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(reply, "+OK") {
		return nil, fmt.Errorf("STLS: %q, %v", reply, err)
	}
	tc := tls.Client(conn, clientTLSConfig())
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	return &prefixConn{Conn: tc, r: io.MultiReader(strings.NewReader(greeting), tc)}, nil
}

type prefixConn struct {
	net.Conn
	r io.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestGoPOP3 runs the knadh/go-pop3 client library through a full
// session, over STLS and over implicit TLS.
func TestGoPOP3(t *testing.T) {
	ts := newTestServer(t, noInsecure)
	uidl := ts.fill("alice")
	host, portStr, _ := net.SplitHostPort(ts.addr)
	port, _ := strconv.Atoi(portStr)
	_, tlsPortStr, _ := net.SplitHostPort(ts.tlsAddr)
	tlsPort, _ := strconv.Atoi(tlsPortStr)

	stls := gopop3.New(gopop3.Opt{Host: host, Port: port, Dialer: stlsDialer{t}})
	implicit := gopop3.New(gopop3.Opt{Host: host, Port: tlsPort, TLSEnabled: true, TLSSkipVerify: true})
	connect := func(cl *gopop3.Client) *gopop3.Conn {
		t.Helper()
		c, err := cl.NewConn()
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		if err := c.Auth("alice", "secret"); err != nil {
			t.Fatalf("Auth: %v", err)
		}
		return c
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// 1: STAT, LIST, UIDL, TOP, RETR, DELE+RSET, over STLS.
	c := connect(stls)
	count, size, err := c.Stat()
	must(err)
	if want := len(msgDots) + len(crlf(msgLF)) + len(msgLong); count != 3 || size != want {
		t.Errorf("Stat: %d %d, want 3 %d", count, size, want)
	}
	list, err := c.List(0)
	must(err)
	if len(list) != 3 || list[1].Size != len(crlf(msgLF)) {
		t.Errorf("List: %+v", list)
	}
	ids, err := c.Uidl(0)
	must(err)
	var got []string
	for _, id := range ids {
		got = append(got, id.UID)
	}
	if !slices.Equal(got, uidl) {
		t.Errorf("Uidl: %v, want %v", got, uidl)
	}
	top, err := c.Top(3, 2)
	must(err)
	if s := top.Header.Get("Subject"); s != "five lines" {
		t.Errorf("Top: Subject %q", s)
	}
	body, _ := io.ReadAll(top.Body)
	if string(body) != "one\r\ntwo\r\n" {
		t.Errorf("Top body: %q", body)
	}
	// RetrRaw hands back the lines as sent, still dot-stuffed: the
	// library does not undo it.
	raw, err := c.RetrRaw(2)
	must(err)
	if raw.String() != stuff(crlf(msgLF)) {
		t.Errorf("RetrRaw 2: %q", raw.String())
	}
	must(c.Dele(1))
	must(c.Rset())
	must(c.Quit())

	// 2: UIDL is stable; DELE+QUIT removes the file. Implicit TLS.
	c = connect(implicit)
	ids, err = c.Uidl(0)
	must(err)
	if len(ids) != 3 || ids[0].UID != uidl[0] || ids[2].UID != uidl[2] {
		t.Errorf("Uidl in the second session: %+v", ids)
	}
	one, err := c.Uidl(3)
	must(err)
	if len(one) != 1 || one[0].UID != uidl[2] {
		t.Errorf("Uidl(3): %+v", one)
	}
	must(c.Dele(3))
	must(c.Quit())
	if ts.messageFile("alice", testFiles[2]) != "" {
		t.Error("DELE+QUIT left the file")
	}
	if ts.messageFile("alice", testFiles[0]) == "" {
		t.Error("DELE+RSET removed the file")
	}

	// 3: what is left; a wrong password.
	c = connect(stls)
	count, _, err = c.Stat()
	must(err)
	if count != 2 {
		t.Errorf("Stat after DELE+QUIT: %d messages", count)
	}
	must(c.Quit())
	c, err = implicit.NewConn()
	must(err)
	if err := c.Auth("alice", "wrong"); err == nil || err.Error() != "[AUTH] Authentication failed." {
		t.Errorf("Auth with a wrong password: %v", err)
	}
	must(c.Quit())
}

// TestPythonPoplib runs testdata/poplib_client.py: STLS, USER/PASS, STAT,
// LIST, UIDL twice, TOP, RETR, DELE+RSET, DELE+QUIT, implicit TLS, and a
// wrong password, with certificate verification on.
func TestPythonPoplib(t *testing.T) {
	py := lookPath(t, "python3")
	ts := newTestServer(t, noInsecure)
	uidl := ts.fill("alice")
	host, port, _ := net.SplitHostPort(ts.addr)
	_, tlsPort, _ := net.SplitHostPort(ts.tlsAddr)
	cafile := filepath.Join(t.TempDir(), "ca.pem")
	certOnce.Do(makeCert)
	if err := os.WriteFile(cafile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: testCert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/poplib_client.py", host, port, tlsPort, "alice", "secret", cafile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("poplib_client.py: %v\n%s", err, stderr.String())
	}
	var r map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	check := func(key string, want any) {
		t.Helper()
		got, _ := json.Marshal(r[key])
		w, _ := json.Marshal(want)
		if string(got) != string(w) {
			t.Errorf("%s: got %s, want %s", key, got, w)
		}
	}
	sizes := []int{len(msgDots), len(crlf(msgLF)), len(msgLong)}
	wantUIDL := []string{"1 " + uidl[0], "2 " + uidl[1], "3 " + uidl[2]}
	check("capa_plain", []string{"AUTH-RESP-CODE", "CAPA", "PIPELINING", "RESP-CODES", "STLS", "TOP", "UIDL"})
	check("capa_tls", []string{"AUTH-RESP-CODE", "CAPA", "PIPELINING", "RESP-CODES", "SASL", "TOP", "UIDL", "USER"})
	check("pass", "+OK Logged in.")
	check("stat", []int{3, sizes[0] + sizes[1] + sizes[2]})
	check("list", []string{fmt.Sprintf("1 %d", sizes[0]), fmt.Sprintf("2 %d", sizes[1]), fmt.Sprintf("3 %d", sizes[2])})
	check("uidl1", wantUIDL)
	check("uidl2", wantUIDL) // stable across sessions
	check("uidl_one", "+OK 2 "+uidl[1])
	check("top", []string{"From: Long <long@example.org>", "Subject: five lines", "X-Folded: a", "\tb", "", "one", "two"})
	check("retr_resp", fmt.Sprintf("+OK %d octets", sizes[0]))
	// poplib undoes the dot-stuffing and splits the lines.
	check("retr1", strings.Split(strings.TrimSuffix(msgDots, "\r\n"), "\r\n"))
	check("quit1", "+OK Logging out.")
	check("dele1", "+OK Marked to be deleted.")
	check("rset", "+OK")
	check("quit2", "+OK Logging out.")
	check("dele2", "+OK Marked to be deleted.")
	check("quit3", "+OK Logging out, messages deleted.")
	check("stat4", []int{2, sizes[0] + sizes[2]})
	check("uidl4", []string{"1 " + uidl[0], "2 " + uidl[2]})
	check("wrong", "-ERR [AUTH] Authentication failed.")
	if ts.messageFile("alice", testFiles[1]) != "" {
		t.Error("DELE+QUIT left the file of message 2")
	}
	if ts.messageFile("alice", testFiles[0]) == "" {
		t.Error("DELE+RSET removed message 1")
	}
}
