package imap

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/letterbox-mail/letterbox/store"
)

// CONDSTORE through go-imap's imapclient, and QRESYNC under concurrency.

func TestCondstoreImapclient(t *testing.T) {
	e := newEnv(t)
	threeOfFour(e)
	st := e.state("alice", "INBOX")
	fetched := make(chan *imapclient.FetchMessageBuffer, 16)
	c := e.client("alice", &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Fetch: func(m *imapclient.FetchMessageData) {
			if b, err := m.Collect(); err == nil {
				fetched <- b
			}
		},
	}})
	for _, cp := range []imap.Cap{imap.CapCondStore, imap.CapQResync} {
		if !c.Caps().Has(cp) {
			t.Errorf("no %s in %v", cp, c.Caps())
		}
	}
	sd := must[*imap.SelectData](t)(c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait())
	if sd.HighestModSeq != st.highest {
		t.Errorf("SELECT (CONDSTORE): HIGHESTMODSEQ %d, the store's %d", sd.HighestModSeq, st.highest)
	}

	msgs := must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true, Flags: true, ModSeq: true}).Collect())
	if len(msgs) != 3 {
		t.Fatalf("FETCH MODSEQ: %d messages", len(msgs))
	}
	for _, m := range msgs {
		if m.ModSeq != st.modSeq[uint32(m.UID)] {
			t.Errorf("UID %d: MODSEQ %d, the store's %d", m.UID, m.ModSeq, st.modSeq[uint32(m.UID)])
		}
	}

	changed := must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.UIDSetNum(1, 2, 3, 4), &imap.FetchOptions{Flags: true, ChangedSince: st.modSeq[3]}).Collect())
	if len(changed) != 1 || changed[0].UID != 4 || changed[0].ModSeq != st.modSeq[4] {
		t.Errorf("CHANGEDSINCE: %+v", changed)
	}

	// UNCHANGEDSINCE: done once, then the MODSEQ it used is stale.
	stored := must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}},
		&imap.StoreOptions{UnchangedSince: st.modSeq[2]}).Collect())
	if len(stored) != 1 || !slices.Contains(stored[0].Flags, imap.FlagFlagged) || stored[0].ModSeq <= st.highest {
		t.Errorf("STORE (UNCHANGEDSINCE): %+v", stored)
	}
	must[[]*imapclient.FetchMessageBuffer](t)(c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagAnswered}},
		&imap.StoreOptions{UnchangedSince: st.modSeq[2]}).Collect())
	if got := e.state("alice", "INBOX").flags[2]; got != `(\Flagged)` {
		t.Errorf("UID 2 has %s after a STORE that should have failed", got)
	}

	after := e.state("alice", "INBOX")
	sts := must[*imap.StatusData](t)(c.Status("Archive", &imap.StatusOptions{HighestModSeq: true}).Wait())
	if want := e.state("alice", "Archive").highest; sts.HighestModSeq != want {
		t.Errorf("STATUS HIGHESTMODSEQ %d, want %d", sts.HighestModSeq, want)
	}
	sr := must[*imap.SearchData](t)(c.UIDSearch(&imap.SearchCriteria{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: after.modSeq[4]}}, nil).Wait())
	if uids := sr.AllUIDs(); fmt.Sprint(uids) != "[2 4]" || sr.ModSeq != after.modSeq[2] {
		t.Errorf("SEARCH MODSEQ: %v (MODSEQ %d), want [2 4] (MODSEQ %d)", uids, sr.ModSeq, after.modSeq[2])
	}

	// Another session's change arrives with its MODSEQ.
	e.addFlags("alice", "INBOX", store.FlagSeen, nil, 3)
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-fetched:
		if b.SeqNum != 2 || b.UID != 3 || fmt.Sprint(b.Flags) != `[\Seen]` || b.ModSeq <= after.highest {
			t.Errorf("unsolicited FETCH: %+v", b)
		}
	case <-time.After(10 * time.Second):
		t.Error("no unsolicited FETCH")
	}
}

// qrClient follows what a QRESYNC client knows of a mailbox from the
// server's lines, and checks the server on the way: per message, MODSEQs
// never go down; VANISHED names no UID twice.
type qrClient struct {
	t       *testing.T
	name    string
	mu      sync.Mutex
	flags   map[uint32]string // UID → FLAGS
	modSeq  map[uint32]uint64
	highest uint64 // the HIGHESTMODSEQ it may resume from
	last    []string
	// vanished and changes count VANISHED and FETCH with MODSEQ.
	vanished, changes int
	gone              map[uint32]bool // UIDs a VANISHED (not EARLIER) named
}

func newQRClient(t *testing.T, name string) *qrClient {
	return &qrClient{t: t, name: name, flags: map[uint32]string{}, modSeq: map[uint32]uint64{}, gone: map[uint32]bool{}}
}

var (
	modSeqRE   = regexp.MustCompile(`MODSEQ \((\d+)\)`)
	flagsAllRE = regexp.MustCompile(`FLAGS (\([^)]*\))`)
	highestRE  = regexp.MustCompile(`\[HIGHESTMODSEQ (\d+)\]`)
	vanishedRE = regexp.MustCompile(`^\* VANISHED (\(EARLIER\) )?([0-9:,]+)$`)
)

func (q *qrClient) errorf(format string, args ...any) {
	q.t.Helper()
	q.t.Errorf(q.name+": "+format+"\nrecent lines:\n%s", append(args, strings.Join(q.last, "\n"))...)
}

func (q *qrClient) line(l string) {
	q.t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.last = append(q.last, l)
	if len(q.last) > 12 {
		q.last = q.last[1:]
	}
	if m := highestRE.FindStringSubmatch(l); m != nil {
		h, _ := strconv.ParseUint(m[1], 10, 64)
		q.highest = h
		return
	}
	if m := vanishedRE.FindStringSubmatch(l); m != nil {
		q.vanished++
		for _, u := range expandSet(m[2]) {
			if m[1] == "" {
				if q.gone[u] {
					q.errorf("VANISHED %d twice", u)
				}
				q.gone[u] = true
			}
			delete(q.flags, u)
		}
		return
	}
	m := fetchRE.FindStringSubmatch(l)
	if m == nil {
		return
	}
	um := uidRE.FindStringSubmatch(m[2])
	if um == nil {
		return
	}
	u64, _ := strconv.ParseUint(um[1], 10, 32)
	uid := uint32(u64)
	fl := flagsAllRE.FindStringSubmatch(m[2])
	if fl != nil {
		q.flags[uid] = strings.ReplaceAll(strings.ReplaceAll(fl[1], ` \Recent`, ""), `\Recent`, "")
	}
	if ms := modSeqRE.FindStringSubmatch(m[2]); ms != nil {
		n, _ := strconv.ParseUint(ms[1], 10, 64)
		if n < q.modSeq[uid] {
			q.errorf("UID %d: MODSEQ %d after %d", uid, n, q.modSeq[uid])
		}
		q.modSeq[uid] = n
		q.changes++
		// What a client that keeps the highest MODSEQ it saw resumes
		// from (the server sends no MODSEQ above a delayed expunge
		// without a HIGHESTMODSEQ after it, §3.2.4).
		q.highest = max(q.highest, n)
	}
}

// run sends a command and follows its lines.
func (q *qrClient) run(c *rawClient, cmd string) string {
	q.t.Helper()
	tag, _, _ := strings.Cut(cmd, " ")
	c.send(cmd)
	for {
		l := c.line()
		q.line(l)
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				q.errorf("%s: %s", cmd, l)
			}
			return l
		}
	}
}

// knownUIDs is the client's UIDs as a sequence set.
func (q *qrClient) knownUIDs() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var uids []uint32
	for u := range q.flags {
		uids = append(uids, u)
	}
	slices.Sort(uids)
	return rangesOf(uids).String()
}

func (q *qrClient) snapshot() map[uint32]string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[uint32]string, len(q.flags))
	for u, f := range q.flags {
		out[u] = f
	}
	return out
}

func expandSet(s string) []uint32 {
	var out []uint32
	for _, part := range strings.Split(s, ",") {
		a, b, _ := strings.Cut(part, ":")
		lo, _ := strconv.ParseUint(a, 10, 32)
		hi := lo
		if b != "" {
			hi, _ = strconv.ParseUint(b, 10, 32)
		}
		for u := lo; u <= hi; u++ {
			out = append(out, uint32(u))
		}
	}
	return out
}

// TestQresyncResyncUnderConcurrency: sessions on two servers (two store
// instances over one Maildir) change flags, expunge and append while a
// QRESYNC session IDLEs. The IDLE session's picture, and a
// resynchronization (SELECT (QRESYNC ...)) from the HIGHESTMODSEQ saved
// before the IDLE and from the one it reached, each give exactly the
// store's flags and the vanished UIDs. Every session checks that the
// MODSEQs it is shown only grow per message.
func TestQresyncResyncUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	e.appendN(20)
	e.claimRecent("alice", "INBOX")
	dial2 := e.secondServer()
	uidValidity := e.uidValidity("alice", "INBOX")

	// The IDLE session: it saves what it knows, then idles.
	idler := newQRClient(t, "idler")
	ic := e.login("alice")
	idler.run(ic, "a ENABLE QRESYNC")
	idler.run(ic, "b SELECT INBOX")
	idler.run(ic, "c UID FETCH 1:* (FLAGS)")
	saved := idler.snapshot()
	savedHighest := idler.highest
	if len(saved) != 20 || savedHighest == 0 {
		t.Fatalf("saved %d messages at HIGHESTMODSEQ %d", len(saved), savedHighest)
	}
	ic.send("i IDLE")
	ic.expect("+ ")
	stopIdle := make(chan struct{})
	idleDone := make(chan struct{})
	go func() {
		defer close(idleDone)
		var partial string
		stopping := false
		for {
			select {
			case <-stopIdle:
				if !stopping {
					stopping = true
					ic.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
					ic.conn.Write([]byte("DONE\r\n"))
				}
			default:
			}
			ic.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			l, err := ic.r.ReadString('\n')
			partial += l
			if err != nil {
				continue
			}
			line := strings.TrimRight(partial, "\r\n")
			partial = ""
			idler.line(line)
			if strings.HasPrefix(line, "i ") {
				if line != "i OK IDLE terminated" {
					idler.errorf("IDLE ended with %q", line)
				}
				return
			}
		}
	}()

	// Workers, one on each server, with CONDSTORE.
	flags := []string{`\Seen`, `\Answered`, `\Flagged`, `\Draft`, "$Work", "$Later", "$Junk"}
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		var c *rawClient
		if w == 0 {
			c = e.login("alice")
		} else {
			c = dial2()
		}
		q := newQRClient(t, fmt.Sprint("worker", w))
		q.run(c, "a ENABLE CONDSTORE")
		q.run(c, "b SELECT INBOX")
		wg.Add(1)
		go func(w int, c *rawClient, q *qrClient) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for i := 0; i < 40; i++ {
				uid := 1 + r.IntN(24)
				fl := flags[r.IntN(len(flags))]
				var cmd string
				switch op := r.IntN(10); {
				case op < 4:
					cmd = fmt.Sprintf("x UID STORE %d +FLAGS (%s)", uid, fl)
				case op < 6:
					cmd = fmt.Sprintf("x UID STORE %d -FLAGS.SILENT (%s)", uid, fl)
				case op < 8:
					q.mu.Lock()
					since := q.modSeq[uint32(uid)]
					q.mu.Unlock()
					cmd = fmt.Sprintf("x UID STORE %d (UNCHANGEDSINCE %d) +FLAGS (%s)", uid, since, fl)
				case op < 9:
					q.run(c, fmt.Sprintf(`y UID STORE %d +FLAGS.SILENT (\Deleted)`, uid))
					cmd = fmt.Sprintf("x UID EXPUNGE %d", uid)
				default:
					m := msg(fmt.Sprint("new ", w, " ", i))
					cmd = "x APPEND INBOX {" + itoa(len(m)) + "+}\r\n" + m
				}
				q.run(c, cmd)
			}
			q.run(c, "z NOOP")
		}(w, c, q)
	}
	wg.Wait()
	close(stopIdle)
	<-idleDone
	ic.conn.SetReadDeadline(time.Time{})
	idler.run(ic, "j NOOP")
	idler.run(ic, "k UID FETCH 21:* (FLAGS)") // the new messages its EXISTS announced

	final := e.state("alice", "INBOX")
	if idler.vanished == 0 || idler.changes == 0 {
		t.Errorf("the IDLE session saw %d VANISHED and %d FETCH with MODSEQ: the test did not test", idler.vanished, idler.changes)
	}
	check := func(name string, got map[uint32]string, base map[uint32]string) {
		t.Helper()
		for u := range base {
			if _, ok := final.flags[u]; !ok {
				if _, ok := got[u]; ok {
					t.Errorf("%s: UID %d is gone but the client still has it", name, u)
				}
				continue
			}
			if got[u] != final.flags[u] {
				t.Errorf("%s: UID %d has %s, the store %s", name, u, got[u], final.flags[u])
			}
		}
	}
	check("idler", idler.snapshot(), saved)

	// Resynchronize from what was saved before the IDLE, and from what
	// the IDLE session reached, each on one of the servers.
	for i, from := range []struct {
		name    string
		flags   map[uint32]string
		highest uint64
		dial    func() *rawClient
	}{
		{"resync from before IDLE", saved, savedHighest, func() *rawClient { return e.login("alice") }},
		{"resync from after IDLE", idler.snapshot(), idler.highest, dial2},
	} {
		q := newQRClient(t, from.name)
		for u, f := range from.flags {
			q.flags[u] = f
		}
		c := from.dial()
		q.run(c, "a ENABLE QRESYNC")
		known := q.knownUIDs()
		q.run(c, fmt.Sprintf("b SELECT INBOX (QRESYNC (%s %d %s))", uidValidity, from.highest, known))
		check(from.name, q.snapshot(), from.flags)
		if got := q.highest; got != final.highest {
			t.Errorf("%s: HIGHESTMODSEQ %d, the store's %d", from.name, got, final.highest)
		}
		// New messages: UIDs above the highest known, as a client asks.
		q.run(c, fmt.Sprintf("c UID FETCH %d:* (FLAGS)", maxKey(from.flags)+1))
		got := q.snapshot()
		if len(got) != len(final.flags) {
			t.Errorf("%s: %d messages, the store %d (%d)", from.name, len(got), len(final.flags), i)
		}
		for u, f := range final.flags {
			if got[u] != f {
				t.Errorf("%s: UID %d has %q, the store %s", from.name, u, got[u], f)
			}
		}
	}
}

func maxKey(m map[uint32]string) uint32 {
	var top uint32
	for u := range m {
		top = max(top, u)
	}
	return top
}
