package clustertest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// problems collects what went wrong, by kind, so that a run ends with counts
// ("IDLE client in B missed a message: 3") instead of stopping at the first.
type problems struct {
	mu       sync.Mutex
	order    []string
	count    map[string]int
	examples map[string][]string
}

func newProblems() *problems {
	return &problems{count: make(map[string]int), examples: make(map[string][]string)}
}

func (p *problems) add(kind, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count[kind] == 0 {
		p.order = append(p.order, kind)
	}
	p.count[kind]++
	if len(p.examples[kind]) < 3 {
		p.examples[kind] = append(p.examples[kind], fmt.Sprintf(format, args...))
	}
}

// report makes each kind one test error (or log line, for notes), with
// its count and a few examples.
func (p *problems) report(logf func(string, ...any), prefix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range p.order {
		logf("%s%s: %d (e.g. %s)", prefix, k, p.count[k], strings.Join(p.examples[k], "; "))
	}
}

// session is an IMAP client connection that watches the server's lines
// for BYE and untagged BAD, which the client library does not surface.
type session struct {
	*imapclient.Client
	conn    *watchConn
	inst    string
	prob    *problems
	closing atomic.Bool
}

func dialIMAP(in *instance, prob *problems, h *imapclient.UnilateralDataHandler) (*session, error) {
	return dialIMAPUntil(in, prob, h, time.Time{})
}

// dialIMAPUntil is dialIMAP with a deadline (if not zero) for everything
// the session does.
func dialIMAPUntil(in *instance, prob *problems, h *imapclient.UnilateralDataHandler, deadline time.Time) (*session, error) {
	addr, _ := in.addrs()
	d := net.Dialer{Timeout: 10 * time.Second, Deadline: deadline}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &session{inst: in.name, prob: prob}
	s.conn = &watchConn{Conn: conn, onLine: s.serverLine}
	if !deadline.IsZero() {
		s.conn.setHardDeadline(deadline)
	}
	s.Client = imapclient.New(s.conn, &imapclient.Options{UnilateralDataHandler: h})
	if err := s.WaitGreeting(); err != nil {
		s.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if err := s.Login(testUser, testPassword).Wait(); err != nil {
		s.Close()
		return nil, fmt.Errorf("LOGIN: %w", err)
	}
	return s, nil
}

func (s *session) serverLine(l []byte) {
	switch {
	case bytes.HasPrefix(l, []byte("* BYE")) && !s.closing.Load():
		s.prob.add("BYE from instance "+s.inst, "%s", bytes.TrimSpace(l))
	case bytes.HasPrefix(l, []byte("* BAD")):
		s.prob.add("untagged BAD from instance "+s.inst, "%s", bytes.TrimSpace(l))
	}
}

// logout ends the session; its BYE is expected.
func (s *session) logout() {
	s.closing.Store(true)
	s.Logout().Wait()
	s.Close()
}

// watchConn hands the start of every line the server sends to onLine.
// Only the first bytes of a line are kept, so literals cost nothing. It
// also holds a hard deadline that the client library's own deadlines cannot
// extend.
type watchConn struct {
	net.Conn
	onLine func([]byte)
	line   []byte
	full   bool

	mu   sync.Mutex
	hard time.Time
}

// setHardDeadline bounds every read and write from now on by t.
func (w *watchConn) setHardDeadline(t time.Time) {
	w.mu.Lock()
	w.hard = t
	w.mu.Unlock()
	w.Conn.SetDeadline(t)
}

func (w *watchConn) clamp(t time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.hard.IsZero() && (t.IsZero() || t.After(w.hard)) {
		return w.hard
	}
	return t
}

func (w *watchConn) SetDeadline(t time.Time) error      { return w.Conn.SetDeadline(w.clamp(t)) }
func (w *watchConn) SetReadDeadline(t time.Time) error  { return w.Conn.SetReadDeadline(w.clamp(t)) }
func (w *watchConn) SetWriteDeadline(t time.Time) error { return w.Conn.SetWriteDeadline(w.clamp(t)) }

func (w *watchConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			w.onLine(w.line)
			w.line, w.full = w.line[:0], false
			continue
		}
		if !w.full {
			w.line = append(w.line, b)
			w.full = len(w.line) >= 200
		}
	}
	return n, err
}

// fetched is one message as a FETCH of UID, FLAGS and the Message-ID
// header shows it.
type fetched struct {
	uid    imap.UID
	id     string
	flags  string // normalized: sorted, lower case, without \Recent
	modSeq uint64 // with CONDSTORE only
}

var msgIDSection = &imap.FetchItemBodySection{
	Specifier:    imap.PartSpecifierHeader,
	HeaderFields: []string{"Message-ID"},
	Peek:         true,
}

// fetchIDs runs UID FETCH set (UID FLAGS BODY.PEEK[HEADER.FIELDS
// (MESSAGE-ID)]), with MODSEQ when modSeq is set.
func fetchIDs(c *imapclient.Client, set imap.UIDSet, modSeq bool) ([]fetched, error) {
	bufs, err := c.Fetch(set, &imap.FetchOptions{
		UID:         true,
		Flags:       true,
		ModSeq:      modSeq,
		BodySection: []*imap.FetchItemBodySection{msgIDSection},
	}).Collect()
	if err != nil {
		return nil, err
	}
	out := make([]fetched, 0, len(bufs))
	for _, b := range bufs {
		out = append(out, fetched{
			uid:    b.UID,
			id:     parseMessageID(b.FindBodySection(msgIDSection)),
			flags:  normFlags(b.Flags),
			modSeq: b.ModSeq,
		})
	}
	return out, nil
}

func parseMessageID(header []byte) string {
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(bytes.TrimRight(header, "\r\n"), "\r\n\r\n"...)))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	return strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
}

// normFlags is a flag list as one comparable string, without \Recent
// (which belongs to one session).
func normFlags[F ~string](flags []F) string {
	var out []string
	for _, f := range flags {
		s := strings.ToLower(string(f))
		if s != `\recent` {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return strings.Join(slices.Compact(out), " ")
}

// snapshot is one folder as a fresh session on one instance sees it.
type snapshot struct {
	inst, folder  string
	uidValidity   uint32
	uidNext       imap.UID
	condStore     bool
	highestModSeq uint64
	msgs          []fetched // in UID order
}

// takeSnapshot opens a fresh session, selects folder and fetches every
// message.
func takeSnapshot(in *instance, folder string, prob *problems) (*snapshot, error) {
	s, err := dialIMAP(in, prob, nil)
	if err != nil {
		return nil, err
	}
	defer s.logout()
	snap := &snapshot{inst: in.name, folder: folder, condStore: s.Caps().Has(imap.CapCondStore)}
	sel, err := s.Select(folder, &imap.SelectOptions{CondStore: snap.condStore}).Wait()
	if err != nil {
		return nil, fmt.Errorf("SELECT %s: %w", folder, err)
	}
	snap.uidValidity, snap.uidNext, snap.highestModSeq = sel.UIDValidity, sel.UIDNext, sel.HighestModSeq
	if sel.NumMessages == 0 {
		return snap, nil
	}
	var all imap.UIDSet
	all.AddRange(1, 0) // 1:*
	if snap.msgs, err = fetchIDs(s.Client, all, snap.condStore); err != nil {
		return nil, fmt.Errorf("UID FETCH 1:* in %s: %w", folder, err)
	}
	slices.SortFunc(snap.msgs, func(a, b fetched) int { return int(a.uid) - int(b.uid) })
	return snap, nil
}

// message is a small RFC 5322 message identified by its Message-ID.
func message(id string, extra int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Cluster Test <ct@example.org>\r\nTo: %s@example.org\r\n", testUser)
	fmt.Fprintf(&b, "Subject: clustertest %s\r\nDate: %s\r\n", id, time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", id)
	fmt.Fprintf(&b, "Message %s.\r\n", id)
	for i := 0; i < extra; i++ {
		b.WriteString("Filler line to give the message some body, as real mail has.\r\n")
	}
	return b.Bytes()
}

// appendMessage APPENDs msg to folder and returns the UID from APPENDUID.
func appendMessage(c *imapclient.Client, folder string, msg []byte, flags []imap.Flag) (imap.UID, error) {
	cmd := c.Append(folder, int64(len(msg)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write(msg); err != nil {
		cmd.Close()
		return 0, err
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	data, err := cmd.Wait()
	if err != nil {
		return 0, err
	}
	return data.UID, nil
}

func uidSet(uid imap.UID) imap.UIDSet {
	var s imap.UIDSet
	s.AddNum(uid)
	return s
}
