package imap

import (
	"mime"
	"net/mail"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store/storetest"
)

// The Dovecot fixture served by us, compared with what Dovecot 2.3 itself
// answered over the same files (store/storetest/testdata/dovecot-maildir,
// golden/imap). Each item is equal, or differs in a way the RFCs allow;
// every such difference has a name below and is counted and logged.

const (
	diffEnvDate   = "ENVELOPE date re-rendered in RFC 5322 form by imapserver: same instant and zone (RFC 3501 §7.4.2 prescribes no form)"
	diff8bit      = "raw 8-bit header text re-encoded as an RFC 2047 encoded-word by imapserver: same text once decoded (RFC 2047 §1)"
	diffParams    = "body parameters in another order: a set (RFC 2045 §5.1)"
	diffDateZone  = "INTERNALDATE in this server's time zone: same instant (RFC 3501 §2.3.3)"
	diffDayPad    = "INTERNALDATE day padded with a space, not a zero (date-day-fixed, RFC 3501 §9: both allowed)"
	diffUnMarked  = `Dovecot's \UnMarked from its list index (RFC 5258 §3: optional)`
	diffSpecial   = "special-use attributes of Letterbox's default folders (RFC 6154 §2: the server assigns them)"
	diffChildren  = `\HasChildren/\HasNoChildren returned unasked (RFC 5258 §4, RFC 3348: allowed)`
	diffListOrder = "order of LIST/LSUB responses (none is defined)"
)

type differ struct {
	t       *testing.T
	allowed map[string]int
}

func newDiffer(t *testing.T) *differ {
	d := &differ{t: t, allowed: make(map[string]int)}
	t.Cleanup(func() {
		var names []string
		for n := range d.allowed {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t.Logf("allowed difference (%d×): %s", d.allowed[n], n)
		}
	})
	return d
}

func (d *differ) allow(name string) { d.allowed[name]++ }

// same compares two values; strings that differ only by raw 8-bit versus
// encoded-words are allowed.
func (d *differ) same(where string, want, got tok) {
	d.t.Helper()
	if want.kind != got.kind {
		d.t.Errorf("%s: got %s, want %s", where, got, want)
		return
	}
	switch want.kind {
	case 'l':
		if len(want.l) != len(got.l) {
			d.t.Errorf("%s: got %s, want %s", where, got, want)
			return
		}
		for i := range want.l {
			d.same(where, want.l[i], got.l[i])
		}
	case 's':
		if want.s == got.s {
			return
		}
		dec := new(mime.WordDecoder)
		w, err1 := dec.DecodeHeader(want.s)
		g, err2 := dec.DecodeHeader(got.s)
		if err1 == nil && err2 == nil && w == g && !isASCII(want.s) {
			d.allow(diff8bit)
			return
		}
		d.t.Errorf("%s: got %q, want %q", where, got.s, want.s)
	default:
		if !strings.EqualFold(want.s, got.s) {
			d.t.Errorf("%s: got %s, want %s", where, got, want)
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func (d *differ) envelope(where string, want, got tok) {
	d.t.Helper()
	if want.kind != 'l' || got.kind != 'l' || len(want.l) != 10 || len(got.l) != 10 {
		d.t.Errorf("%s: ENVELOPE got %s, want %s", where, got, want)
		return
	}
	wd, gd := want.l[0], got.l[0]
	if wd.kind == 's' && gd.kind == 's' && wd.s != gd.s {
		w, err1 := mail.ParseDate(wd.s)
		g, err2 := mail.ParseDate(gd.s)
		_, wo := w.Zone()
		_, gotOff := g.Zone()
		if err1 != nil || err2 != nil || !w.Equal(g) || wo != gotOff {
			d.t.Errorf("%s: ENVELOPE date %q, want %q", where, gd.s, wd.s)
		} else {
			d.allow(diffEnvDate)
		}
	} else {
		d.same(where+" ENVELOPE date", wd, gd)
	}
	for i := 1; i < 10; i++ {
		d.same(where+" ENVELOPE", want.l[i], got.l[i])
	}
}

// bodyStructure compares, taking parameter lists as sets.
func (d *differ) bodyStructure(where string, want, got tok) {
	d.t.Helper()
	w, g := sortParams(want), sortParams(got)
	if w.String() != want.String() || g.String() != got.String() {
		if w.String() == g.String() && want.String() != got.String() {
			d.allow(diffParams)
			return
		}
	}
	d.same(where+" BODYSTRUCTURE", w, g)
}

// sortParams sorts the pairs of every list of strings with an even length
// (parameter lists) by name.
func sortParams(t tok) tok {
	if t.kind != 'l' {
		return t
	}
	out := tok{kind: 'l'}
	allStrings := len(t.l) >= 4 && len(t.l)%2 == 0
	for _, c := range t.l {
		out.l = append(out.l, sortParams(c))
		allStrings = allStrings && c.kind == 's'
	}
	if allStrings {
		type pair struct{ k, v tok }
		var ps []pair
		for i := 0; i < len(out.l); i += 2 {
			ps = append(ps, pair{out.l[i], out.l[i+1]})
		}
		sort.Slice(ps, func(i, j int) bool { return strings.ToLower(ps[i].k.s) < strings.ToLower(ps[j].k.s) })
		out.l = out.l[:0]
		for _, p := range ps {
			out.l = append(out.l, p.k, p.v)
		}
	}
	return out
}

type dovecotFolder struct {
	IMAPName string `json:"imap_name"`
	MUTF7    string `json:"imap_name_mutf7"`
	Golden   *struct {
		Status string `json:"status"`
		Select string `json:"select"`
		Fetch  string `json:"fetch"`
	} `json:"golden"`
}

// ourName is a folder's name with "/" as separator.
func ourName(dovecotName string) string { return strings.ReplaceAll(dovecotName, ".", "/") }

func TestDovecotFixtureFetch(t *testing.T) {
	e := newEnv(t, withFixture())
	d := newDiffer(t)
	var man struct {
		Folders []dovecotFolder `json:"folders"`
	}
	storetest.Manifest(t, &man)
	c := e.login("fixture")

	// UID 19 was dropped into new/ after Dovecot's capture;
	// golden/after-pickup has what Dovecot said when it first saw it, in
	// a session that selected INBOX first, as this one does.
	golden := splitResponses(storetest.Golden(t, "after-pickup/imap-fetch-uid19.txt"))
	w, err := fetchItems(golden[1])
	if err != nil {
		t.Fatal(err)
	}
	c.ok("s SELECT INBOX")
	u := c.ok("g UID FETCH 18:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
	if len(u) != 1 {
		t.Fatalf("UID FETCH 18:*: %q", u)
	}
	g, err := fetchItems(u[0])
	if err != nil {
		t.Fatal(err)
	}
	d.same("UID 19 UID", w["UID"], g["UID"])
	d.same("UID 19 FLAGS", w["FLAGS"], g["FLAGS"])
	d.same("UID 19 RFC822.SIZE", w["RFC822.SIZE"], g["RFC822.SIZE"])
	d.internalDate("UID 19", w["INTERNALDATE"], g["INTERNALDATE"])
	d.envelope("UID 19", w["ENVELOPE"], g["ENVELOPE"])
	if !strings.HasPrefix(u[0], "* 15 FETCH") {
		t.Errorf("UID 19 is %q, want sequence number 15", u[0])
	}

	for _, f := range man.Folders {
		if f.Golden == nil {
			continue
		}
		name := ourName(f.MUTF7) // as a client without UTF8=ACCEPT sends it
		golden := splitResponses(storetest.Golden(t, strings.TrimPrefix(f.Golden.Fetch, "golden/")))
		cmd := golden[0]
		want := map[string]map[string]tok{}
		for _, r := range golden[1:] {
			if strings.HasPrefix(r, "* ") {
				items, err := fetchItems(r)
				if err != nil {
					t.Fatal(err)
				}
				want[items["UID"].s] = items
			}
		}
		c.ok(`e EXAMINE "` + name + `"`)
		_, tag, _ := strings.Cut(cmd, " ")
		untagged := c.ok("f " + tag)
		got := map[string]map[string]tok{}
		for _, r := range untagged {
			items, err := fetchItems(r)
			if err != nil {
				t.Fatal(err)
			}
			got[items["UID"].s] = items
		}
		for uid, w := range want {
			g, ok := got[uid]
			if !ok {
				t.Errorf("%s UID %s: missing", name, uid)
				continue
			}
			where := name + " UID " + uid
			d.same(where+" FLAGS", w["FLAGS"], g["FLAGS"])
			d.same(where+" RFC822.SIZE", w["RFC822.SIZE"], g["RFC822.SIZE"])
			d.internalDate(where, w["INTERNALDATE"], g["INTERNALDATE"])
			d.envelope(where, w["ENVELOPE"], g["ENVELOPE"])
			d.bodyStructure(where, w["BODYSTRUCTURE"], g["BODYSTRUCTURE"])
		}
		for uid := range got {
			if _, ok := want[uid]; !ok && !(name == "INBOX" && uid == "19") {
				t.Errorf("%s: extra UID %s", name, uid)
			}
		}
	}
}

func (d *differ) internalDate(where string, want, got tok) {
	d.t.Helper()
	if want.s == got.s {
		return
	}
	const layout = "2-Jan-2006 15:04:05 -0700"
	ws, gs := strings.TrimPrefix(want.s, "0"), strings.TrimPrefix(got.s, " ")
	w, err1 := time.Parse(layout, ws)
	g, err2 := time.Parse(layout, gs)
	if err1 != nil || err2 != nil || !w.Equal(g) {
		d.t.Errorf("%s INTERNALDATE %q, want %q", where, got.s, want.s)
		return
	}
	if ws == gs {
		d.allow(diffDayPad)
	} else {
		d.allow(diffDateZone)
	}
}

func TestDovecotFixtureSelectStatus(t *testing.T) {
	e := newEnv(t, withFixture())
	var man struct {
		Folders []dovecotFolder `json:"folders"`
	}
	storetest.Manifest(t, &man)
	c := e.login("fixture")
	for _, f := range man.Folders {
		if f.Golden == nil {
			continue
		}
		name := ourName(f.MUTF7)
		selFile, stFile := f.Golden.Select, f.Golden.Status
		if name == "INBOX" {
			// The unindexed message makes INBOX what Dovecot saw later.
			selFile, stFile = "golden/after-pickup/imap-select-inbox.txt", "golden/after-pickup/imap-status-inbox.txt"
		}
		// As in Dovecot's sessions: INBOX's after-pickup SELECT came
		// first (the store keeps \Recent only while a folder is open).
		golden := splitResponses(storetest.Golden(t, strings.TrimPrefix(selFile, "golden/")))
		u := c.ok(`t SELECT "` + name + `"`)
		want := selectFacts(golden[1:])
		got := selectFacts(u)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s SELECT %s = %q, want %q", name, k, got[k], v)
			}
		}

		golden = splitResponses(storetest.Golden(t, strings.TrimPrefix(stFile, "golden/")))
		_, args, _ := strings.Cut(golden[0], " STATUS ")
		args = strings.Replace(args, `"`+f.MUTF7+`"`, `"`+name+`"`, 1)
		args = strings.Replace(args, f.MUTF7+" ", `"`+name+`" `, 1)
		u = c.ok("s STATUS " + args)
		wantItems := statusItems(t, golden[1])
		gotItems := statusItems(t, u[0])
		for k, v := range wantItems {
			if gotItems[k] != v {
				t.Errorf("%s STATUS %s = %s, want %s", name, k, gotItems[k], v)
			}
		}
		c.ok("u UNSELECT")
	}
}

func statusItems(t *testing.T, resp string) map[string]string {
	t.Helper()
	i := strings.LastIndexByte(resp, '(')
	toks, err := parseTokens(resp[i:])
	if err != nil || len(toks) != 1 {
		t.Fatalf("bad STATUS %q", resp)
	}
	m := map[string]string{}
	for j := 0; j+1 < len(toks[0].l); j += 2 {
		m[toks[0].l[j].s] = toks[0].l[j+1].s
	}
	return m
}

// selectFacts picks what SELECT tells, ignoring the human text.
func selectFacts(lines []string) map[string]string {
	m := map[string]string{}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "* FLAGS "):
			m["FLAGS"] = strings.TrimPrefix(l, "* FLAGS ")
		case strings.HasSuffix(l, " EXISTS"), strings.HasSuffix(l, " RECENT"):
			f := strings.Fields(l)
			m[f[2]] = f[1]
		case strings.HasPrefix(l, "* OK ["):
			code := l[len("* OK ["):strings.IndexByte(l, ']')]
			k, v, _ := strings.Cut(code, " ")
			m[k] = v
		}
	}
	return m
}

func TestDovecotFixtureBodies(t *testing.T) {
	e := newEnv(t, withFixture())
	c := e.login("fixture")
	c.ok("e EXAMINE INBOX")
	for _, file := range []string{"imap/inbox-uid13-lf-file-body.txt", "imap/inbox-uid14-crlf-file-body.txt", "imap/inbox-uid11-rfc2231-mime.txt"} {
		golden := splitResponses(storetest.Golden(t, file))
		_, cmd, _ := strings.Cut(golden[0], " ")
		u := c.ok("b " + cmd)
		if len(u) != 1 {
			t.Fatalf("%s: %q", file, u)
		}
		want, err := fetchItems(golden[1])
		if err != nil {
			t.Fatal(err)
		}
		got, err := fetchItems(u[0])
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != len(got) {
			t.Errorf("%s: items %v, want %v", file, got, want)
		}
		for k, w := range want {
			if g := got[k]; g.String() != w.String() {
				t.Errorf("%s: %s\n got %s\nwant %s", file, k, g, w)
			}
		}
		if file != "imap/inbox-uid11-rfc2231-mime.txt" && u[0] != golden[1] {
			t.Errorf("%s: not byte for byte:\n got %q\nwant %q", file, u[0], golden[1])
		}
	}
}
