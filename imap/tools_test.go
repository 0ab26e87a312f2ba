package imap

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Real command-line clients over implicit TLS: openssl s_client typed at
// by hand (LF line ends, one tag for everything) and curl.

func TestOpenSSLSession(t *testing.T) {
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("hello openssl"), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "s_client", "-connect", e.tlsAddr, "-quiet")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdout)
		for {
			l, err := r.ReadString('\n')
			if l != "" {
				lines <- strings.TrimRight(l, "\r\n")
			}
			if err != nil {
				return
			}
		}
	}()
	read := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("openssl ended")
			}
			return l
		case <-time.After(15 * time.Second):
			t.Fatal("timeout waiting for the server")
		}
		return ""
	}
	if g := read(); !strings.HasPrefix(g, "* OK [CAPABILITY ") {
		t.Fatalf("greeting %q", g)
	}
	// The session of the issue, typed with LF line ends.
	steps := []struct{ cmd, status string }{
		{"1 LOGIN alice secret", "OK"},
		{`1 LIST "" *`, "OK"},
		{`1 CREATE "INBOX"`, "NO"},
		{`1 CREATE "ToRead"`, "OK"},
		{`1 RENAME "ToRead" "Important"`, "OK"},
		{`1 LSUB "" *`, "OK"},
		{"1 SELECT INBOX", "OK"},
		{"1 FETCH 1 all", "OK"},
		{"1 FETCH 1 BODY.PEEK[]", "OK"},
		{"1 UNSELECT", "OK"},
		{`1 DELETE "Important"`, "OK"},
		{"1 CLOSE", "BAD"}, // nothing is selected any more
		{"1 LOGOUT", "OK"},
	}
	var transcript []string
	for _, st := range steps {
		io.WriteString(stdin, st.cmd+"\n")
		transcript = append(transcript, "C: "+st.cmd)
		var untagged []string
		for {
			l := read()
			transcript = append(transcript, "S: "+l)
			if strings.HasPrefix(l, "1 ") {
				if !strings.HasPrefix(l, "1 "+st.status) {
					t.Errorf("%s: got %q, want %s", st.cmd, l, st.status)
				}
				break
			}
			untagged = append(untagged, l)
		}
		switch st.cmd {
		case `1 LIST "" *`:
			if !contains(untagged, `* LIST (\HasNoChildren) "/" INBOX`) {
				t.Errorf("LIST: %q", untagged)
			}
		case "1 FETCH 1 all":
			if len(untagged) != 1 || !strings.Contains(untagged[0], "ENVELOPE (") || !strings.Contains(untagged[0], "INTERNALDATE") {
				t.Errorf("FETCH all: %q", untagged)
			}
		case "1 FETCH 1 BODY.PEEK[]":
			if len(untagged) < 1 || !strings.HasSuffix(untagged[0], "BODY[] {70}") {
				t.Errorf("FETCH BODY.PEEK[]: %q", untagged)
			}
		}
	}
	t.Logf("openssl s_client session:\n%s", strings.Join(transcript, "\n"))
}

func TestCurlListsFolders(t *testing.T) {
	path, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-sS", "-k", "imaps://"+e.tlsAddr, "--user", "alice:"+testPassword).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	for _, want := range []string{`* LIST (\HasNoChildren) "/" INBOX`, `"Sent"`, `"Trash"`, `"Drafts"`, `"Junk"`, `"Archive"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("curl output lacks %q:\n%s", want, out)
		}
	}
	// And a message by UID.
	e.appendMsg("alice", "INBOX", msg("for curl"), 0)
	out, err = exec.CommandContext(ctx, path, "-sS", "-k", "imaps://"+e.tlsAddr+"/INBOX/;UID=1", "--user", "alice:"+testPassword).CombinedOutput()
	if err != nil || string(out) != msg("for curl") {
		t.Errorf("curl fetch: %v %q", err, out)
	}
}

// Python's imaplib over implicit TLS: what scripts and older mail tools
// use.
func TestPythonImaplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	e := newEnv(t)
	e.appendMsg("alice", "INBOX", msg("for python"), 0)
	host, port, _ := strings.Cut(e.tlsAddr, ":")
	script := `
import imaplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL(sys.argv[1], int(sys.argv[2]), ssl_context=ctx)
print(m.login("alice", "secret")[0])
typ, boxes = m.list()
print(typ, len(boxes), boxes[0].decode())
print(m.select("INBOX"))
print(m.search(None, "ALL"))
print(m.uid("SEARCH", None, "FROM", "a@example.org"))
typ, data = m.fetch("1", "(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print(typ, data[0][0].decode(), data[0][1].decode().strip())
print(m.store("1", "+FLAGS", "(\\Flagged)"))
print(m.append("INBOX", "(\\Seen)", imaplib.Time2Internaldate(0), b"Subject: from py\r\n\r\nhi\r\n")[0])
print(m.create("Py/Sub"), m.delete("Py/Sub"))
print(m.status("INBOX", "(MESSAGES UNSEEN)"))
m.close()
print(m.logout()[0])
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := []string{
		"OK",
		`OK 6 (\HasNoChildren) "/" INBOX`,
		"('OK', [b'1'])",
		"('OK', [b'1'])",
		"('OK', [b'1'])",
		"OK 1 (RFC822.SIZE 64 BODY[HEADER.FIELDS (SUBJECT)] {23} Subject: for python",
		`('OK', [b'1 (FLAGS (\\Flagged \\Recent))'])`,
		"OK",
		"('OK', [b'CREATE completed']) ('OK', [b'DELETE completed'])",
		`('OK', [b'INBOX (MESSAGES 2 UNSEEN 1)'])`,
		"BYE",
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(got) != len(want) {
		t.Fatalf("python said:\n%s", out)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %s\n want %s", i, got[i], want[i])
		}
	}
}

// Python's imaplib as a NOTIFY client (RFC 5465): it has no NOTIFY of its
// own, but sends any command it is told of and keeps the untagged
// responses it is sent, as a script watching several folders would.
func TestPythonImaplibNotify(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	e := newEnv(t)
	host, port, _ := strings.Cut(e.tlsAddr, ":")
	script := `
import imaplib, ssl, sys, time
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
imaplib.Commands["NOTIFY"] = ("AUTH", "SELECTED")
def connect():
    m = imaplib.IMAP4_SSL(sys.argv[1], int(sys.argv[2]), ssl_context=ctx)
    m.login("alice", "secret")
    return m
w = connect()
print(b"NOTIFY" in w.capability()[1][0].split())
print(w._simple_command("NOTIFY", "SET", "(PERSONAL (MessageNew MessageExpunge MailboxName))")[0])
o = connect()
o.append("Sent", None, None, b"Subject: watched\r\n\r\nhi\r\n")
o.create("Reports")
o.logout()
time.sleep(0.5)
w.noop()
print(w.untagged_responses.get("STATUS"))
print(w.untagged_responses.get("LIST"))
print(w.logout()[0])
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := "True\nOK\n" +
		"[b'\"Sent\" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)', b'\"Reports\" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)']\n" +
		`[b'(\\HasNoChildren) "/" "Reports"']` + "\nBYE"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("python said:\n%s\nwant:\n%s", got, want)
	}
}
