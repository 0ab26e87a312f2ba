package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// countMail counts the messages in a Maildir's new/ and cur/.
func countMail(t *testing.T, maildir string) int {
	t.Helper()
	n := 0
	for _, sub := range []string{"new", "cur"} {
		es, err := os.ReadDir(filepath.Join(maildir, sub))
		if err != nil {
			t.Fatal(err)
		}
		n += len(es)
	}
	return n
}

// SIGTERM: sessions waiting for a command are told goodbye and closed at
// once, nothing a POP3 session marked deleted is expunged, and serve exits
// without waiting for the drain timeout.
func TestServeDrainIdle(t *testing.T) {
	e := newTestEnv(t)
	cfgFile := filepath.Join(e.dir, "letterbox.toml")
	serveConfig{DrainTimeout: "20s"}.write(t, cfgFile)
	e.must("secret\n", "user", "add", "ivan", "--password-stdin", "--cost=4", "--config", cfgFile)
	e.must("secret\n", "user", "add", "judy", "--password-stdin", "--cost=4", "--config", cfgFile)
	e.must(testMessage, "deliver", "ivan", "--config", cfgFile)
	sr := e.startServe(nil, "--config", cfgFile)
	ls := sr.listeners()

	pop := pop3Login(t, ls["pop3/starttls"], "ivan", "secret")
	pop.cmd("DELE 1", "+OK")
	greeted := newLineClient(t, dial(t, ls["pop3/starttls"], false))
	greeted.expect("+OK")
	im := newLineClient(t, dial(t, ls["imap/starttls"], false))
	im.expect("* OK")
	im.cmd("a1 LOGIN judy secret", "a1 OK")
	im.cmd("a2 SELECT INBOX", "*")
	im.until("a2 OK")
	idle := newLineClient(t, dial(t, ls["imap/starttls"], false))
	idle.expect("* OK")
	idle.cmd("b1 LOGIN judy secret", "b1 OK")
	idle.cmd("b2 SELECT INBOX", "*")
	idle.until("b2 OK")
	idle.cmd("b3 IDLE", "+ ")

	start := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	pop.expect("-ERR [SYS/TEMP]")
	pop.expectEOF()
	greeted.expect("-ERR [SYS/TEMP]")
	greeted.expectEOF()
	im.until("* BYE")
	idle.until("* BYE")
	if code := sr.wait(t); code != exitOK {
		t.Errorf("exit %d", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %v with nothing to wait for", d)
	}
	if n := countMail(t, filepath.Join(e.dir, "data", "mail", "ivan", "Maildir")); n != 1 {
		t.Errorf("%d messages after DELE and a shutdown, want 1 (no UPDATE state)", n)
	}
}

// bigMailServe starts serve with drain timeout drain and ivan logged in
// over POP3 with one message bigger than loopback socket buffers hold.
func bigMailServe(t *testing.T, drain string) (*serveRun, *lineClient, int) {
	e := newTestEnv(t)
	cfgFile := filepath.Join(e.dir, "letterbox.toml")
	serveConfig{DrainTimeout: drain}.write(t, cfgFile)
	e.must("secret\n", "user", "add", "ivan", "--password-stdin", "--cost=4", "--config", cfgFile)
	body := strings.Repeat(strings.Repeat("x", 76)+"\n", 600_000)
	e.must(testMessage+body, "deliver", "ivan", "--config", cfgFile)
	sr := e.startServe(nil, "--config", cfgFile)
	return sr, pop3Login(t, sr.listeners()["pop3/starttls"], "ivan", "secret"), 600_000
}

// A command in progress when SIGTERM comes finishes: the client gets the
// whole message, then the goodbye.
func TestServeDrainFinishesCommand(t *testing.T) {
	sr, pop, lines := bigMailServe(t, "20s")
	pop.cmd("RETR 1", "+OK") // the server is now blocked writing
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sr.waitLog(t, "shutting down")
	n := 0
	for line := pop.expect(""); line != ".\r\n"; line = pop.expect("") {
		if strings.HasPrefix(line, "xxxx") {
			n++
		}
	}
	if n != lines {
		t.Errorf("got %d body lines of %d", n, lines)
	}
	pop.expect("-ERR [SYS/TEMP]")
	pop.expectEOF()
	if code := sr.wait(t); code != exitOK || strings.Contains(sr.stderr.String(), "drain incomplete") {
		t.Errorf("exit %d\n%s", code, sr.stderr.String())
	}
}

// A session that does not finish (a client that stopped reading a big
// RETR) is cut off at server.drain_timeout.
func TestServeDrainTimeout(t *testing.T) {
	sr, pop, _ := bigMailServe(t, "1s")
	pop.cmd("RETR 1", "+OK") // and read no further
	time.Sleep(300 * time.Millisecond)

	start := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := sr.wait(t); code != exitOK {
		t.Errorf("exit %d", code)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 6*time.Second {
		t.Errorf("stopped after %v with drain_timeout 1s", d)
	}
	if !strings.Contains(sr.stderr.String(), "drain incomplete") {
		t.Errorf("log:\n%s", sr.stderr.String())
	}
}
