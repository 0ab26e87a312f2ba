package imap

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// go-imap's client drives SORT and THREAD.
func TestSortImapclient(t *testing.T) {
	e := newEnv(t)
	sortBox(t, e)
	threadBox(t, e)
	c := e.client("alice", nil)
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range []imap.Cap{imap.CapSort, imap.CapSortDisplay, imap.CapESort, "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "CONTEXT=SORT"} {
		if !caps.Has(cp) {
			t.Errorf("capability %s missing", cp)
		}
	}
	if algs := caps.ThreadAlgorithms(); len(algs) != 2 {
		t.Errorf("thread algorithms %v", algs)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	nums, err := c.Sort(&imapclient.SortOptions{
		SearchCriteria: &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}},
		SortCriteria:   []imapclient.SortCriterion{{Key: imapclient.SortKeySubject}, {Key: imapclient.SortKeyDate, Reverse: true}},
	}).Wait()
	if err != nil || fmt.Sprint(nums) != "[4 5 2 1 3]" {
		t.Errorf("SORT (SUBJECT REVERSE DATE): %v %v", nums, err)
	}
	uids, err := c.UIDSort(&imapclient.SortOptions{
		SearchCriteria: &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "x.test"}}},
		SortCriteria:   []imapclient.SortCriterion{{Key: imapclient.SortKeySize, Reverse: true}},
	}).Wait()
	if err != nil || fmt.Sprint(uids) != "[6 2 4 3]" {
		t.Errorf("UID SORT (REVERSE SIZE) FROM x.test: %v %v", uids, err)
	}
	if _, err := c.Select("Threads", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	threads, err := c.UIDThread(&imapclient.ThreadOptions{Algorithm: imap.ThreadReferences, SearchCriteria: &imap.SearchCriteria{}}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(threads); got != "[{[1] [{[2 4 9] []} {[6] []}]} {[3] [{[8] []} {[5] []}]} {[7] []}]" {
		t.Errorf("UID THREAD REFERENCES: %s", got)
	}
	threads, err = c.Thread(&imapclient.ThreadOptions{Algorithm: imap.ThreadOrderedSubject, SearchCriteria: &imap.SearchCriteria{}}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(threads); got != "[{[9] [{[1] []} {[2] []} {[6] []} {[4] []}]} {[8] [{[3] []} {[5] []}]} {[7] []}]" {
		t.Errorf("THREAD ORDEREDSUBJECT: %s", got)
	}
}

// Python's imaplib: sort() and thread() as scripts use them.
func TestSortPythonImaplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	e := newEnv(t)
	sortBox(t, e)
	threadBox(t, e)
	host, port, _ := strings.Cut(e.tlsAddr, ":")
	script := `
import imaplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL(sys.argv[1], int(sys.argv[2]), ssl_context=ctx)
m.login("alice", "secret")
m.select("INBOX")
print(m.sort("(REVERSE DATE)", "UTF-8", "ALL"))
print(m.sort("(DISPLAYFROM)", "US-ASCII", "NOT", "SUBJECT", "a"))
print(m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL"))
m.select("Threads")
print(m.thread("REFERENCES", "UTF-8", "ALL"))
print(m.uid("THREAD", "ORDEREDSUBJECT", "UTF-8", "SUBJECT", "other"))
try:
    m.sort("(BOGUS)", "UTF-8", "ALL")
except imaplib.IMAP4.error as e:
    print("error", e)
m.logout()
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := strings.Join([]string{
		"('OK', [b'1 5 4 2 3'])",
		"('OK', [b'4 3 1'])",
		"('OK', [b'5 3 6 2 4'])",
		"('OK', [b'(1 (2 4 9)(6))(3 (8)(5))(7)'])",
		"('OK', [b'(8 (3)(5))'])",
		"error SORT command error: BAD [b'Syntax error: unknown sort key BOGUS']",
	}, "\n")
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("python said:\n%s\nwant:\n%s", got, want)
	}
}

func init() {
	decodeArgs["SORT"] = func(p *parser, uid bool) any { return parseSort(p, uid) }
	decodeArgs["THREAD"] = func(p *parser, uid bool) any {
		p.sp()
		alg := p.word()
		p.sp()
		cs := p.astring()
		p.sp()
		c := parseKeys(p, uid, 0)
		p.end()
		return []any{alg, cs, c}
	}
}

// FuzzSortDifferential: SORT and THREAD as imapclient encodes them decode
// to what it was given.
func FuzzSortDifferential(f *testing.F) {
	for i := 0; i < 20; i++ {
		f.Add([]byte(fmt.Sprint("sort", i)))
	}
	keys := []imapclient.SortKey{imapclient.SortKeyArrival, imapclient.SortKeyCc, imapclient.SortKeyDate,
		imapclient.SortKeyFrom, imapclient.SortKeySize, imapclient.SortKeySubject, imapclient.SortKeyTo}
	f.Fuzz(func(t *testing.T, data []byte) {
		diffServer.once.Do(func() { diffServer.fs = newFakeServer(t) })
		diffServer.mu.Lock()
		defer diffServer.mu.Unlock()
		fs := diffServer.fs
		fs.drain()
		h := fnv.New64a()
		h.Write(data)
		g := gen{rand.New(rand.NewPCG(h.Sum64(), 2))}
		cl := fs.client

		crit := g.criteria(0)
		var sc []imapclient.SortCriterion
		var want []string
		for range 1 + g.n(4) {
			c := imapclient.SortCriterion{Key: keys[g.n(len(keys))], Reverse: g.chance()}
			sc = append(sc, c)
			w := string(c.Key)
			if c.Reverse {
				w = "REVERSE " + w
			}
			want = append(want, w)
		}
		uid := g.chance()
		opts := &imapclient.SortOptions{SearchCriteria: &crit, SortCriteria: sc}
		if uid {
			cl.UIDSort(opts).Wait()
		} else {
			cl.Sort(opts).Wait()
		}
		sa := fs.await(t).args.(sortArgs)
		var got []string
		for _, c := range sa.criteria {
			w := c.Key.String()
			if c.Reverse {
				w = "REVERSE " + w
			}
			got = append(got, w)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") || sa.charset != "UTF-8" || canon(sa.searchArgs.criteria.toIMAP()) != canon(crit) {
			t.Fatalf("SORT:\n got  %q %s %s\n want %q %s", got, sa.charset, canon(sa.searchArgs.criteria.toIMAP()), want, canon(crit))
		}

		alg := []imap.ThreadAlgorithm{imap.ThreadReferences, imap.ThreadOrderedSubject}[g.n(2)]
		cl.Thread(&imapclient.ThreadOptions{Algorithm: alg, SearchCriteria: &crit}).Wait()
		ta := fs.await(t).args.([]any)
		tc := ta[2].(criteria)
		if ta[0] != string(alg) || ta[1] != "UTF-8" || canon(tc.toIMAP()) != canon(crit) {
			t.Fatalf("THREAD: got %v %v %s, want %s %s", ta[0], ta[1], canon(tc.toIMAP()), alg, canon(crit))
		}
	})
}
