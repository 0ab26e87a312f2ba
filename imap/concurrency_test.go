package imap

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// Several sessions on one mailbox, one of them on a second server with
// its own store over the same files (another process), doing STORE,
// APPEND, EXPUNGE and MOVE while others IDLE or NOOP. Each session's view
// is checked after every response:
//
//   - sequence numbers: a FETCH's UID is the one the session's view has
//     at that number (EXISTS, EXPUNGE kept it in step);
//   - FLAGS announces every keyword before a FETCH shows it;
//   - RECENT never exceeds EXISTS;
//   - flags are never older than a state the session was shown: flags
//     are only ever added here, so each message's flags only grow.

// viewChecker follows one session's responses.
type viewChecker struct {
	t        *testing.T
	name     string
	last     []string // recent lines, for the error messages
	uids     []uint32 // 0 where not yet learnt
	keywords map[string]bool
	flags    map[uint32]map[string]bool
}

var (
	fetchRE = regexp.MustCompile(`^\* (\d+) FETCH \((.*)\)$`)
	uidRE   = regexp.MustCompile(`UID (\d+)`)
	flagsRE = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
)

func newViewChecker(t *testing.T, name string) *viewChecker {
	return &viewChecker{t: t, name: name, keywords: map[string]bool{}, flags: map[uint32]map[string]bool{}}
}

func (v *viewChecker) line(l string) {
	v.last = append(v.last, l)
	if len(v.last) > 12 {
		v.last = v.last[1:]
	}
	t := &checkerT{v}
	f := strings.Fields(l)
	switch {
	case len(f) >= 3 && f[0] == "*" && f[2] == "EXISTS":
		n, _ := strconv.Atoi(f[1])
		if n < len(v.uids) {
			t.Errorf("%s: EXISTS %d after %d without EXPUNGE", v.name, n, len(v.uids))
		}
		for len(v.uids) < n {
			v.uids = append(v.uids, 0)
		}
	case len(f) >= 3 && f[0] == "*" && f[2] == "EXPUNGE":
		n, _ := strconv.Atoi(f[1])
		if n < 1 || n > len(v.uids) {
			t.Errorf("%s: EXPUNGE %d of %d", v.name, n, len(v.uids))
			return
		}
		v.uids = append(v.uids[:n-1], v.uids[n:]...)
	case len(f) >= 3 && f[0] == "*" && f[2] == "RECENT":
		n, _ := strconv.Atoi(f[1])
		if n > len(v.uids) {
			t.Errorf("%s: RECENT %d > EXISTS %d", v.name, n, len(v.uids))
		}
	case strings.HasPrefix(l, "* FLAGS ("):
		for _, k := range strings.Fields(strings.Trim(l[len("* FLAGS "):], "()")) {
			v.keywords[k] = true
		}
	case fetchRE.MatchString(l):
		m := fetchRE.FindStringSubmatch(l)
		seq, _ := strconv.Atoi(m[1])
		if seq < 1 || seq > len(v.uids) {
			t.Errorf("%s: FETCH %d of %d: %q", v.name, seq, len(v.uids), l)
			return
		}
		um := uidRE.FindStringSubmatch(m[2])
		if um == nil {
			return
		}
		u64, _ := strconv.ParseUint(um[1], 10, 32)
		uid := uint32(u64)
		if v.uids[seq-1] != 0 && v.uids[seq-1] != uid {
			t.Errorf("%s: FETCH %d is UID %d, the view has %d", v.name, seq, uid, v.uids[seq-1])
		}
		v.uids[seq-1] = uid
		fm := flagsRE.FindStringSubmatch(m[2])
		if fm == nil {
			return
		}
		now := map[string]bool{}
		for _, fl := range strings.Fields(fm[1]) {
			now[fl] = true
			if !strings.HasPrefix(fl, `\`) && !v.keywords[fl] {
				t.Errorf("%s: keyword %s before FLAGS announced it: %q", v.name, fl, l)
			}
		}
		for fl := range v.flags[uid] {
			if !now[fl] && fl != `\Recent` {
				t.Errorf("%s: UID %d shown without %s, which it had: %q", v.name, uid, fl, l)
			}
		}
		v.flags[uid] = now
	}
}

// checkerT adds the recent lines to errors.
type checkerT struct{ v *viewChecker }

func (c *checkerT) Errorf(format string, args ...any) {
	c.v.t.Helper()
	c.v.t.Errorf(format+"\nrecent lines:\n%s", append(args, strings.Join(c.v.last, "\n"))...)
}

// checkedClient is a raw client whose every line goes through a checker.
type checkedClient struct {
	*rawClient
	v *viewChecker
}

func (c *checkedClient) run(cmd string) string {
	c.t.Helper()
	tag, _, _ := strings.Cut(cmd, " ")
	c.send(cmd)
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			return l
		}
		c.v.line(l)
	}
}

// secondServer starts a second server with its own store over the same
// Maildir (another process as far as the store is concerned) and returns
// a dial function that logs in as alice there.
func (e *testEnv) secondServer() func() *rawClient {
	t := e.t
	st2, err := store.Open(store.Options{PathTemplate: filepath.Join(e.dir, "mail", "{user}", "Maildir"), Hostname: "other"})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := &Server{Store: st2, Auth: e.auth, AllowInsecureAuth: true, Logger: e.srv.Logger,
		panicHook: func(v any) { t.Errorf("panic in the second server: %v", v) }}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv2.Serve(l2) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv2.Shutdown(ctx)
		<-done
		st2.Close()
	})
	return func() *rawClient {
		conn, err := net.Dial("tcp", l2.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c := e.rawClient(conn).greeted()
		c.ok("l LOGIN alice secret")
		return c
	}
}

func TestConcurrentSessionsStayInStep(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 10; i++ {
		e.appendMsg("alice", "INBOX", msg(fmt.Sprint("start ", i)), 0)
	}
	dial2 := e.secondServer()

	keywords := []string{"$K1", "$K2", "$K3", "$K4", "$K5", "$K6"}
	const workers, ops = 4, 40
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		var raw *rawClient
		if w == workers-1 {
			raw = dial2()
		} else {
			raw = e.login("alice")
		}
		c := &checkedClient{raw, newViewChecker(t, fmt.Sprint("worker", w))}
		c.run("s SELECT INBOX")
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < ops; i++ {
				n := len(c.v.uids)
				var cmd string
				switch op := r.IntN(10); {
				case op < 4 && n > 0:
					cmd = fmt.Sprintf("x STORE %d +FLAGS (%s)", 1+r.IntN(n), keywords[r.IntN(len(keywords))])
					if r.IntN(2) == 0 {
						cmd = strings.Replace(cmd, "FLAGS", "FLAGS.SILENT", 1)
					}
				case op < 6:
					m := msg(fmt.Sprint("w", w, " op", i))
					box := "INBOX"
					if w == workers-1 {
						// Two stores numbering new messages of one
						// folder at once can hand out a UID below one
						// already announced (the store warns); Store
						// v2's change log is to order them. Until then
						// the other process appends elsewhere.
						box = "Archive"
					}
					cmd = "x APPEND " + box + " {" + itoa(len(m)) + "+}\r\n" + m
				case op < 7 && n > 0:
					cmd = fmt.Sprintf(`x STORE %d +FLAGS.SILENT (\Deleted)`, 1+r.IntN(n))
				case op < 8:
					cmd = "x EXPUNGE"
				case op < 9 && n > 0:
					cmd = fmt.Sprintf("x MOVE %d Archive", 1+r.IntN(n))
				default:
					cmd = "x NOOP"
				}
				if tagged := c.run(cmd); !strings.HasPrefix(tagged, "x OK") {
					t.Errorf("worker %d: %s: %q", w, cmd, tagged)
				}
			}
			c.run("y NOOP")
		}(w)
	}
	// Observers: two in IDLE (one on the second server), one polling.
	var idlers []*checkedClient
	for i, raw := range []*rawClient{e.login("alice"), dial2()} {
		c := &checkedClient{raw, newViewChecker(t, fmt.Sprint("idler", i))}
		c.run("s SELECT INBOX")
		c.send("i IDLE")
		c.expect("+ ")
		idlers = append(idlers, c)
	}
	idleDone := make(chan struct{})
	var iwg sync.WaitGroup
	for _, c := range idlers {
		iwg.Add(1)
		go func(c *checkedClient) {
			defer iwg.Done()
			r := c.r
			var partial string // a line cut by the read deadline
			for {
				select {
				case <-idleDone:
					return
				default:
				}
				c.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				l, err := r.ReadString('\n')
				partial += l
				if err != nil {
					continue
				}
				c.v.line(strings.TrimRight(partial, "\r\n"))
				partial = ""
			}
		}(c)
	}
	poller := &checkedClient{e.login("alice"), newViewChecker(t, "poller")}
	poller.run("s SELECT INBOX")
	stop := make(chan struct{})
	go func() {
		wg.Wait()
		close(stop)
	}()
	for polling := true; polling; {
		select {
		case <-stop:
			polling = false
		case <-time.After(20 * time.Millisecond):
			poller.run("p NOOP")
		}
	}
	close(idleDone)
	iwg.Wait()

	// At the end every session agrees with the store.
	var want []uint32
	m, err := e.user("alice").Open(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	m.Read(context.Background(), func(v *store.View) {
		for i := 0; i < v.Len(); i++ {
			want = append(want, v.At(i).UID)
		}
	})
	m.Close()
	poller.run("p2 NOOP")
	poller.run("p3 FETCH 1:* (UID)")
	if fmt.Sprint(poller.v.uids) != fmt.Sprint(want) {
		t.Errorf("poller's view %v, the store's %v", poller.v.uids, want)
	}
	for _, c := range idlers {
		c.conn.SetReadDeadline(time.Time{})
		c.send("DONE")
		c.run("j NOOP")
		c.run("k FETCH 1:* (UID)")
		if fmt.Sprint(c.v.uids) != fmt.Sprint(want) {
			t.Errorf("%s's view %v, the store's %v", c.v.name, c.v.uids, want)
		}
	}
}
