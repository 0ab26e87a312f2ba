package pop3

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/store/storetest"
)

// TestDovecotFixture serves the Maildir Dovecot wrote (store/storetest) and
// compares the answers with Dovecot's own, recorded in golden/pop3 and
// golden/after-pickup. The fixture has one unindexed file in new/; the store
// numbers it when the session opens INBOX, as Dovecot did on the scratch
// copy, so STAT, LIST and UIDL must match the after-pickup session (15
// messages), not the capture before it (14).
func TestDovecotFixture(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.template = storetest.UserMaildir(t, t.TempDir()) })

	var manifest struct {
		POP3 struct {
			Stat string            `json:"stat"`
			List map[string]int    `json:"list"`
			UIDL map[string]string `json:"uidl"`
		} `json:"pop3"`
		AfterPickup struct {
			MSN  int    `json:"pop3_msn"`
			UIDL string `json:"pop3_uidl"`
			Size int    `json:"rfc822_size"`
		} `json:"unindexed_after_pickup_observed_on_scratch_copy"`
	}
	storetest.Manifest(t, &manifest)

	c := ts.dial()
	// Dovecot's CAPA before login, less "LOGIN" in the SASL line: we
	// offer PLAIN only.
	c.send("CAPA")
	_, capa := goldenCommand(t, "pop3/capa-before-auth.txt")
	c.expect(strings.Replace(lines(capa), "SASL PLAIN LOGIN", "SASL PLAIN", 1))
	c.send("USER fixture")
	c.expect("+OK")
	c.send("PASS fixture")
	c.expect("+OK Logged in.")

	// Whole commands whose answers are unchanged by the pickup.
	for _, name := range []string{
		"capa-after-auth", "list-one", "uidl-one",
		"retr-uid12-dots", "retr-uid14-crlf-file", "retr-uid2-8bit",
		"top-uid13-lf-file-0", "top-uid13-lf-file-100",
	} {
		t.Run(name, func(t *testing.T) {
			cmd, reply := goldenCommand(t, "pop3/"+name+".txt")
			c.send(cmd)
			wire := c.readLine() + "\r\n"
			if strings.HasPrefix(wire, "+OK") && strings.Count(reply, "\r\n") > 1 {
				wire += string(c.readMulti())
			}
			if wire != reply {
				t.Errorf("%s:\n got %q\nwant %q", cmd, wire, reply)
			}
		})
	}

	// STAT, LIST and UIDL after the pickup: Dovecot's session on the
	// scratch copy.
	after := strings.Split(lines(storetest.Golden(t, "after-pickup/pop3-session.txt")), "\n")
	section := func(cmd string) string {
		for i, l := range after {
			if l == cmd {
				var out []string
				for _, r := range after[i+1:] {
					out = append(out, r)
					if r == "." || (len(out) == 1 && cmd == "STAT") {
						break
					}
				}
				return strings.Join(out, "\n")
			}
		}
		t.Fatalf("no %s in after-pickup/pop3-session.txt", cmd)
		return ""
	}
	for _, cmd := range []string{"STAT", "LIST", "UIDL"} {
		t.Run("after-pickup "+cmd, func(t *testing.T) {
			c.send(cmd)
			c.expect(section(cmd))
		})
	}

	// The manifest agrees, message by message, and message 15 is the
	// file that was in new/.
	for n, size := range manifest.POP3.List {
		c.send("LIST " + n)
		c.expect(fmt.Sprintf("+OK %s %d", n, size))
		c.send("UIDL " + n)
		c.expect(fmt.Sprintf("+OK %s %s", n, manifest.POP3.UIDL[n]))
	}
	c.send(fmt.Sprintf("UIDL %d", manifest.AfterPickup.MSN))
	c.expect(fmt.Sprintf("+OK %d %s", manifest.AfterPickup.MSN, manifest.AfterPickup.UIDL))
	c.send(fmt.Sprintf("LIST %d", manifest.AfterPickup.MSN))
	c.expect(fmt.Sprintf("+OK %d %d", manifest.AfterPickup.MSN, manifest.AfterPickup.Size))

	c.send("QUIT")
	c.expect("+OK Logging out.")
	c.expectClosed()

	// A second session sees the same UIDLs: nothing to download again.
	c = ts.login("fixture")
	c.send("UIDL")
	c.expect(section("UIDL"))
	c.send("QUIT")
	c.expect("+OK Logging out.")

	if p := ts.messageFile("fixture", "1795674600.V803I4d5e6fM777777.mx"); !strings.Contains(p, "/cur/") {
		t.Errorf("the picked-up file is at %q, want it in cur/", p)
	}
}

// lines turns CRLF text into the form client.expect takes: "\n" between
// lines, none at the end.
func lines(data string) string {
	return strings.TrimSuffix(strings.ReplaceAll(data, "\r\n", "\n"), "\n")
}

// goldenCommand splits a golden command file into the command and the raw
// reply bytes.
func goldenCommand(t *testing.T, name string) (cmd, reply string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(storetest.FixtureDir(), "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	cmd, reply, ok := strings.Cut(string(data), "\r\n")
	if !ok {
		t.Fatalf("%s: no command line", name)
	}
	return cmd, reply
}
