package imap

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/store"
)

// Benchmarks on a big folder (issue 10's performance targets): header
// fetch, ENVELOPE, SORT and THREAD over every message of a 100,000-message
// INBOX, warm (same server, cache filled) and cold after a restart (a new
// store.Store and Server on the same directory, cache filled, the OS page
// cache warm as on any running machine). Run with
//
//	go test -run XXX -bench Big -benchtime 5x ./imap
//
// LETTERBOX_BENCH_N changes the folder size (default 100000). The folder
// is made once per test process in a temporary directory (about 2 KB a
// message) and removed when the process ends. Besides the wall time, each
// reports the CPU time the whole process used per operation (cpu-ms/op):
// the machine is shared and that is what stays comparable under load.
// The client reading the responses runs in the same process (it only
// splits lines and skips literals).
//
// LETTERBOX_DOVECOT_USER=<system user> adds the same operations on Dovecot
// (Debian's /usr/lib/dovecot/imap, preauthenticated over a pipe, on a
// hard-linked copy of the folder) for a side-by-side figure.

const dovecotIMAP = "/usr/lib/dovecot/imap"

// headerFetch5 is the "header fetch of 5 fields".
const headerFetch5 = "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From To Subject Date Message-ID)])"

var (
	bigOnce sync.Once
	bigDir  string // an env dir: mail/alice/Maildir, users
	bigErr  error
	bigTmp  []string // removed by TestMain
)

func bigN() int {
	if n, err := strconv.Atoi(os.Getenv("LETTERBOX_BENCH_N")); err == nil && n > 0 {
		return n
	}
	return 100000
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range bigTmp {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// bigFolder makes (once) a directory for newEnv(withDir) whose alice has
// an INBOX of n generated messages, named and listed in dovecot-uidlist as
// Dovecot leaves them.
func bigFolder(b *testing.B) string {
	bigOnce.Do(func() {
		dir, err := os.MkdirTemp("", "letterbox-imap-bench-")
		if err != nil {
			bigErr = err
			return
		}
		bigTmp = append(bigTmp, dir)
		bigErr = writeBigFolder(dir, bigN())
		bigDir = dir
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	return bigDir
}

func writeBigFolder(dir string, n int) error {
	root := filepath.Join(dir, "mail", "alice", "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o700); err != nil {
			return err
		}
	}
	h, err := auth.HashPassword(testPassword, 4)
	if err != nil {
		return err
	}
	if err := auth.AddUser(filepath.Join(dir, "users"), "alice", h); err != nil {
		return err
	}
	ul, err := os.Create(filepath.Join(root, "dovecot-uidlist"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(ul)
	fmt.Fprintf(w, "3 V1700000000 N%d G0123456789abcdef0123456789abcdef\n", n+1)
	g := newMailGen(n)
	for i := 1; i <= n; i++ {
		msg, date := g.next(i)
		base := fmt.Sprintf("%d.M%dP4242.host,S=%d,W=%d", date.Unix(), i, len(msg), len(msg))
		p := filepath.Join(root, "cur", base+":2,S")
		if err := os.WriteFile(p, msg, 0o600); err != nil {
			return err
		}
		if err := os.Chtimes(p, date, date); err != nil {
			return err
		}
		fmt.Fprintf(w, "%d :%s\n", i, base)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := ul.Close(); err != nil {
		return err
	}
	old := time.Now().Add(-time.Hour)
	for _, sub := range []string{"cur", "new"} {
		if err := os.Chtimes(filepath.Join(root, sub), old, old); err != nil {
			return err
		}
	}
	return nil
}

// mailGen makes messages shaped like a busy mailing-list folder (as
// mailsort's benchmark data): a third start a topic, the others reply to a
// recent message with In-Reply-To and References; full headers of 1.5-2 KB
// with Received lines and a DKIM signature; a fifth multipart/alternative.
type mailGen struct {
	r      *rand.Rand
	ids    []string
	refs   [][]string
	subj   []string
	topics int
	start  time.Time
}

func newMailGen(n int) *mailGen {
	return &mailGen{r: rand.New(rand.NewPCG(1, 2)), ids: make([]string, n+1), refs: make([][]string, n+1),
		subj: make([]string, n+1), start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (g *mailGen) next(i int) ([]byte, time.Time) {
	r := g.r
	date := g.start.Add(time.Duration(i)*time.Minute + time.Duration(r.IntN(60))*time.Second)
	sent := date.Add(-time.Duration(r.IntN(3600)) * time.Second)
	g.ids[i] = fmt.Sprintf("%d.%d@mail%d.example.org", date.UnixNano(), r.IntN(100000), r.IntN(50))
	user := r.IntN(2000)
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <user%d@example.org>\r\n", user)
	for h := 0; h < 2; h++ {
		fmt.Fprintf(&b, "Received: from mx%d.example.org (mx%d.example.org [192.0.2.%d])\r\n\tby mail.example.net (Postfix) with ESMTPS id %X\r\n\tfor <alice@example.net>; %s\r\n",
			h, h, r.IntN(250), r.Uint64(), date.Format(time.RFC1123Z))
	}
	sig := make([]byte, 344)
	for k := range sig {
		sig[k] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[r.IntN(64)]
	}
	fmt.Fprintf(&b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=mail;\r\n\tt=%d; h=From:To:Subject:Date:Message-ID;\r\n\tbh=%s=;\r\n\tb=%s\r\n\t%s\r\n\t%s==\r\n",
		date.Unix(), sig[:43], sig[:72], sig[72:144], sig[144:200])
	fmt.Fprintf(&b, "Message-ID: <%s>\r\nDate: %s\r\n", g.ids[i], sent.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: \"User %d Name\" <user%d@example.org>\r\nTo: The List <list@lists.example.org>\r\n", user, user)
	if i%7 == 0 {
		fmt.Fprintf(&b, "Cc: user%d@example.org\r\n", r.IntN(2000))
	}
	if i == 1 || r.IntN(3) == 0 {
		g.topics++
		g.subj[i] = fmt.Sprintf("Topic number %d about things", g.topics)
		fmt.Fprintf(&b, "Subject: [list] %s\r\n", g.subj[i])
	} else {
		p := max(1, i-1-r.IntN(min(i-1, 500)))
		g.subj[i] = g.subj[p]
		refs := append([]string(nil), g.refs[p]...)
		if len(refs) > 20 {
			refs = refs[len(refs)-20:]
		}
		g.refs[i] = append(refs, g.ids[p])
		fmt.Fprintf(&b, "Subject: Re: [list] %s\r\nIn-Reply-To: <%s>\r\nReferences: <%s>\r\n", g.subj[i], g.ids[p], strings.Join(g.refs[i], ">\r\n <"))
	}
	b.WriteString("MIME-Version: 1.0\r\n")
	alt := i%5 == 0
	if alt {
		b.WriteString("Content-Type: multipart/alternative; boundary=\"b1\"\r\n")
	} else {
		b.WriteString("Content-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\n")
	}
	b.WriteString("List-Id: The List <list.lists.example.org>\r\nList-Post: <mailto:list@lists.example.org>\r\n" +
		"List-Unsubscribe: <mailto:list-leave@lists.example.org>, <https://lists.example.org/leave>\r\nX-Mailer: Bench 1.0\r\n\r\n")
	text := strings.Repeat("Some text of the message, as people write it. ", 8+r.IntN(10))
	if alt {
		fmt.Fprintf(&b, "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>%s</p>\r\n--b1--\r\n", text, text)
	} else {
		b.WriteString(text + "\r\n")
	}
	return []byte(b.String()), date
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bigSession logs in to a server over the big folder and selects INBOX.
func bigSession(e *testEnv) *rawClient {
	c := e.login("alice")
	c.ok("s SELECT INBOX")
	return c
}

// run sends a command and reads its responses up to the tagged OK,
// skipping literals, with as little work as the client can do.
func (c *rawClient) run(tag, cmd string) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
	c.send(tag + " " + cmd)
	if err := drain(c.r, tag); err != nil {
		c.t.Fatal(err)
	}
}

// drain reads responses up to the tagged reply for tag, which must be OK.
func drain(r *bufio.Reader, tag string) error {
	prefix := []byte(tag + " ")
	for {
		l, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			for err == bufio.ErrBufferFull {
				l, err = r.ReadSlice('\n')
			}
		}
		if err != nil {
			return err
		}
		if bytes.HasPrefix(l, prefix) {
			if !bytes.HasPrefix(l[len(prefix):], []byte("OK")) {
				return fmt.Errorf("%s", l)
			}
			return nil
		}
		if n := len(l); n > 3 && l[n-3] == '}' {
			i := bytes.LastIndexByte(l, '{')
			if i < 0 {
				continue
			}
			size, err := strconv.ParseInt(string(l[i+1:n-3]), 10, 64)
			if err != nil {
				return err
			}
			if _, err := r.Discard(int(size)); err != nil {
				return err
			}
		}
	}
}

// benchBig measures cmd on the big folder: warm (one server, the cache
// filled by a first run) and restart (a new store and server for every
// run; only the command is timed, after SELECT).
func benchBig(b *testing.B, cmd string) {
	dir := bigFolder(b)
	b.Run("warm", func(b *testing.B) {
		e := newEnv(b, withDir(dir))
		c := bigSession(e)
		c.run("w", cmd)
		cpu := cpuTime()
		b.ResetTimer()
		for b.Loop() {
			c.run("f", cmd)
		}
		b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
	})
	b.Run("restart", func(b *testing.B) {
		e := newEnv(b, withDir(dir))
		c := bigSession(e)
		c.run("w", cmd) // fills the cache, if the warm run did not
		var cpu time.Duration
		b.ResetTimer()
		for b.Loop() {
			b.StopTimer()
			e = e.restart()
			c = bigSession(e)
			start := cpuTime()
			b.StartTimer()
			c.run("f", cmd)
			b.StopTimer()
			cpu += cpuTime() - start
			b.StartTimer()
		}
		b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/op")
	})
	if user := os.Getenv("LETTERBOX_DOVECOT_USER"); user != "" {
		b.Run("dovecot", func(b *testing.B) { benchDovecot(b, dir, user, cmd) })
	}
}

func BenchmarkBigHeaderFetch(b *testing.B) { benchBig(b, headerFetch5) }
func BenchmarkBigEnvelope(b *testing.B)    { benchBig(b, "FETCH 1:* (ENVELOPE)") }
func BenchmarkBigBodyStructure(b *testing.B) {
	benchBig(b, "FETCH 1:* (BODYSTRUCTURE)")
}
func BenchmarkBigSortDate(b *testing.B)     { benchBig(b, "SORT (DATE) UTF-8 ALL") }
func BenchmarkBigSortSubject(b *testing.B)  { benchBig(b, "SORT (SUBJECT) UTF-8 ALL") }
func BenchmarkBigSortFrom(b *testing.B)     { benchBig(b, "SORT (FROM) UTF-8 ALL") }
func BenchmarkBigThread(b *testing.B)       { benchBig(b, "THREAD REFERENCES UTF-8 ALL") }
func BenchmarkBigFlags(b *testing.B)        { benchBig(b, "UID FETCH 1:* (FLAGS)") }
func BenchmarkBigSearchUnseen(b *testing.B) { benchBig(b, "UID SEARCH UNSEEN") }

// BenchmarkBigFill is the first reading of the folder by a new server
// with no cache: every message file parsed once, its items cached.
func BenchmarkBigFill(b *testing.B) {
	dir := bigFolder(b)
	for b.Loop() {
		b.StopTimer()
		os.Remove(filepath.Join(dir, "mail", "alice", "Maildir", "letterbox-cache"))
		e := newEnv(b, withDir(dir))
		c := bigSession(e)
		b.StartTimer()
		c.run("f", headerFetch5)
		b.StopTimer()
		e.stop()
		b.StartTimer()
	}
}

// benchDovecot runs cmd on Dovecot over a hard-linked copy of the folder:
// warm in one process after a first run, and in a new process each time
// (its index and cache on disk, as after a restart).
func benchDovecot(b *testing.B, dir, user, cmd string) {
	src := filepath.Join(dir, "mail", "alice", "Maildir")
	dst := filepath.Join(dir, "dovecot", "Maildir")
	if _, err := os.Stat(dst); err != nil {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(dst, sub), 0o700); err != nil {
				b.Fatal(err)
			}
		}
		files, _ := filepath.Glob(filepath.Join(src, "cur", "*"))
		for _, f := range files {
			if err := os.Link(f, filepath.Join(dst, "cur", filepath.Base(f))); err != nil {
				b.Fatal(err)
			}
		}
		ul := readFile(b, filepath.Join(src, "dovecot-uidlist"))
		if err := os.WriteFile(filepath.Join(dst, "dovecot-uidlist"), ul, 0o600); err != nil {
			b.Fatal(err)
		}
		if out, err := exec.Command("chown", "-R", user, filepath.Dir(dst)).CombinedOutput(); err != nil {
			b.Fatalf("chown: %v %s", err, out)
		}
		// The temporary directory is root's: let the user through it.
		if err := os.Chmod(dir, 0o711); err != nil {
			b.Fatal(err)
		}
	}
	start := func() (*dovecotProc, error) {
		cmd := exec.Command("setpriv", "--reuid="+user, "--regid="+user, "--init-groups", "env", "-i",
			"USER="+user, "HOME="+filepath.Dir(dst), dovecotIMAP, "-o", "mail_location=maildir:"+dst,
			"-o", "log_path=/dev/null")
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		p := &dovecotProc{cmd: cmd, in: in, r: bufio.NewReaderSize(out, 64<<10)}
		if _, err := p.r.ReadString('\n'); err != nil {
			return nil, err
		}
		return p, p.run("s SELECT INBOX")
	}
	b.Run("warm", func(b *testing.B) {
		p, err := start()
		if err != nil {
			b.Fatal(err)
		}
		defer p.close()
		if err := p.run("w " + cmd); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := p.run("f " + cmd); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("restart", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			p, err := start()
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			err = p.run("f " + cmd)
			b.StopTimer()
			p.close()
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}

type dovecotProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	r   *bufio.Reader
}

// run sends a command and reads up to its tagged reply.
func (p *dovecotProc) run(line string) error {
	tag, _, _ := strings.Cut(line, " ")
	if _, err := io.WriteString(p.in, line+"\r\n"); err != nil {
		return err
	}
	return drain(p.r, tag)
}

func (p *dovecotProc) close() {
	io.WriteString(p.in, "z LOGOUT\r\n")
	p.in.Close()
	p.cmd.Wait()
}

// BenchmarkBigCacheBytes fills the cache with every item (header fetch,
// BODYSTRUCTURE) and the in-memory SORT keys, and reports what they take
// per message: each item's bytes in letterbox-cache, the file per message
// (with the records the store has not compacted away yet) and the heap
// the SORT keys of the folder hold.
func BenchmarkBigCacheBytes(b *testing.B) {
	dir := bigFolder(b)
	e := newEnv(b, withDir(dir))
	c := bigSession(e)
	c.run("h", headerFetch5)
	c.run("b", "FETCH 1:* (BODYSTRUCTURE)")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c.run("s", "SORT (SUBJECT) UTF-8 ALL")
	runtime.GC()
	runtime.ReadMemStats(&after)
	e.stop()
	e = newEnv(b, withDir(dir))
	mbox, err := e.user("alice").Open(context.Background(), "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	defer mbox.Close()
	var uids []uint32
	mbox.Read(context.Background(), func(v *store.View) {
		for i := range v.Len() {
			uids = append(uids, v.At(i).UID)
		}
	})
	var sizes [4]int
	for b.Loop() {
		sizes = [4]int{}
		for _, u := range uids {
			for _, it := range mbox.CachedItems(u) {
				if it.Key >= keyHeader && it.Key <= keyStructure {
					sizes[it.Key-keyHeader] += len(it.Value)
				}
			}
		}
	}
	n := float64(len(uids))
	for i, name := range []string{"header", "envelope", "keys", "structure"} {
		b.ReportMetric(float64(sizes[i])/n, name+"-B/msg")
	}
	if fi, err := os.Stat(filepath.Join(e.user("alice").Root(), "letterbox-cache")); err == nil {
		b.ReportMetric(float64(fi.Size())/n, "file-B/msg")
	}
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "sortkeys-heap-B/msg")
}

// BenchmarkBigSelectAfterRestart is SELECT of the 100,000-message INBOX by
// a server that just started (new store and server on the same directory:
// the folder's change log is read, nothing listed).
func BenchmarkBigSelectAfterRestart(b *testing.B) {
	dir := bigFolder(b)
	e := newEnv(b, withDir(dir))
	bigSession(e)
	for b.Loop() {
		b.StopTimer()
		e = e.restart()
		c := e.login("alice")
		b.StartTimer()
		c.run("s", "SELECT INBOX")
	}
}
