package imap

import (
	"sort"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/store/storetest"
)

// LIST, LSUB and NAMESPACE of the Dovecot fixture against golden/imap and
// golden/experiments/separator-slash.

// listLine is one LIST or LSUB response.
type listLine struct {
	attrs  []string
	name   string
	status string
}

func parseList(t *testing.T, lines []string, dovecot bool) map[string]listLine {
	t.Helper()
	out := map[string]listLine{}
	var last string
	for _, l := range lines {
		if strings.HasPrefix(l, "* STATUS ") {
			i := strings.LastIndexByte(l, '(')
			e := out[last]
			e.status = l[i:]
			out[last] = e
			continue
		}
		_, rest, _ := strings.Cut(l, " ")
		_, rest, _ = strings.Cut(rest, " ")
		toks, err := parseTokens(rest)
		if err != nil || len(toks) < 3 {
			t.Fatalf("bad LIST %q", l)
		}
		var e listLine
		for _, a := range toks[0].l {
			e.attrs = append(e.attrs, a.s)
		}
		e.name = toks[2].s
		if toks[2].kind == 'a' {
			e.name = toks[2].s
		}
		if dovecot {
			e.name = ourName(e.name)
		}
		out[e.name] = e
		last = e.name
	}
	return out
}

func TestDovecotFixtureList(t *testing.T) {
	e := newEnv(t, withFixture())
	d := newDiffer(t)
	c := e.login("fixture")
	specials := map[string]bool{`\Sent`: true, `\Drafts`: true, `\Trash`: true, `\Junk`: true, `\Archive`: true}
	for _, file := range []string{
		"imap/05-list-all.txt", "imap/06-list-return-special-use-children.txt", "imap/07-lsub-all.txt",
		"imap/08-list-subscribed.txt", "imap/09-list-percent.txt", "imap/10-lsub-percent.txt", "imap/11-list-status.txt",
	} {
		golden := splitResponses(storetest.Golden(t, file))
		_, cmd, _ := strings.Cut(golden[0], " ")
		untagged := c.ok("l " + cmd)
		want := parseList(t, golden[1:len(golden)-1], true)
		got := parseList(t, untagged, false)
		var wantOrder, gotOrder []string
		for _, l := range golden[1 : len(golden)-1] {
			if !strings.HasPrefix(l, "* STATUS") {
				wantOrder = append(wantOrder, l)
			}
		}
		for _, l := range untagged {
			if !strings.HasPrefix(l, "* STATUS") {
				gotOrder = append(gotOrder, l)
			}
		}
		if len(wantOrder) != len(gotOrder) {
			t.Errorf("%s: %d responses, want %d:\n%s", file, len(gotOrder), len(wantOrder), strings.Join(untagged, "\n"))
		}
		for name, w := range want {
			g, ok := got[name]
			if !ok {
				t.Errorf("%s: %q missing", file, name)
				continue
			}
			wantChildInfo := false
			var wa []string
			for _, a := range w.attrs {
				if a == `\UnMarked` {
					d.allow(diffUnMarked)
					continue
				}
				wantChildInfo = wantChildInfo || a == `\HasChildren` || a == `\HasNoChildren`
				wa = append(wa, a)
			}
			var ga []string
			for _, a := range g.attrs {
				switch {
				case specials[a]:
					d.allow(diffSpecial)
				case !wantChildInfo && (a == `\HasChildren` || a == `\HasNoChildren`):
					d.allow(diffChildren)
				default:
					ga = append(ga, a)
				}
			}
			sort.Strings(wa)
			sort.Strings(ga)
			if strings.Join(wa, " ") != strings.Join(ga, " ") {
				t.Errorf("%s %q: attributes %v, want %v", file, name, g.attrs, w.attrs)
			}
			if name == "INBOX" && file == "imap/11-list-status.txt" {
				// The message dropped into new/ after Dovecot's capture
				// (golden/after-pickup/imap-status-inbox.txt).
				w.status = "(MESSAGES 15 UIDNEXT 20 UIDVALIDITY 1795677296 UNSEEN 6)"
			}
			if w.status != g.status {
				t.Errorf("%s %q: STATUS %s, want %s", file, name, g.status, w.status)
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("%s: extra %q", file, name)
			}
		}
		d.allow(diffListOrder)
	}
}

func TestDovecotFixtureNamespaceAndDelimiter(t *testing.T) {
	e := newEnv(t, withFixture())
	c := e.login("fixture")
	// golden/experiments/separator-slash: Dovecot with "/" as separator.
	if u := c.ok("n NAMESPACE"); u[0] != `* NAMESPACE (("" "/")) NIL NIL` {
		t.Errorf("NAMESPACE %q", u)
	}
	if u := c.ok(`l LIST "" ""`); u[0] != `* LIST (\Noselect) "/" ""` {
		t.Errorf(`LIST "" "": %q`, u)
	}
	c.fails(`x EXAMINE "Archive.2026"`, "NO")
	c.fails(`x CREATE "x.y"`, "NO")
	u := c.ok(`x EXAMINE "Archive/2026"`)
	if f := selectFacts(u); f["PERMANENTFLAGS"] != "()" || f["EXISTS"] != "2" || f["UIDVALIDITY"] != "1795677300" {
		t.Errorf("EXAMINE: %v", f)
	}
	if u := c.ok("x UID FETCH 1:* (UID FLAGS)"); strings.Join(u, "\n") != "* 1 FETCH (UID 1 FLAGS (\\Seen))\n* 2 FETCH (UID 2 FLAGS (\\Flagged \\Seen))" {
		t.Errorf("FETCH: %q", u)
	}
	c.ok(`x CREATE "New/Child"`)
	c.ok(`x SUBSCRIBE "New/Child"`)
	if u := c.ok(`x LIST "" "New*"`); strings.Join(u, "\n") != "* LIST (\\Noselect \\HasChildren) \"/\" \"New\"\n* LIST (\\HasNoChildren) \"/\" \"New/Child\"" {
		t.Errorf("LIST New*: %q", u)
	}
	if u := c.ok(`x LSUB "" "New*"`); strings.Join(u, "\n") != "* LSUB () \"/\" \"New/Child\"" {
		t.Errorf("LSUB New*: %q", u)
	}
}
