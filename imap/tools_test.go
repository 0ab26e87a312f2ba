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
