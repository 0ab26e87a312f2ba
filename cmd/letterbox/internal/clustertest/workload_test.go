package clustertest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"
)

// The workload's folders besides INBOX: COPY targets and MOVE targets.
const (
	folderCopies = "CT-Copies"
	folderMoved  = "CT-Moved"
)

// noiseFlag is changed by noise workers on any message, to rename files
// under the feet of their owners; the model ignores it, the comparison
// between instances does not.
const noiseFlag = "$ctnoise"

var workFlags = []imap.Flag{imap.FlagSeen, imap.FlagFlagged, imap.FlagAnswered, imap.FlagDraft, "$Label1", "todo", "work"}

// tracked is what the test knows of one message it made. Only its owner
// (the worker that made it) changes it, so the expected final state is
// known whatever the interleaving.
type tracked struct {
	id     string
	folder string
	uid    imap.UID        // 0 until learnt (APPENDUID, COPYUID, SEARCH)
	flags  map[string]bool // lower case, as normFlags
	gone   bool            // expunged, or moved away (the target is another tracked)
	unsure bool            // a command on it failed: its state is unknown
	copied bool
	tries  int // SEARCHes that did not find a delivered message yet
}

func (m *tracked) flagString() string {
	var fl []string
	for f, on := range m.flags {
		if on {
			fl = append(fl, f)
		}
	}
	return normFlags(fl)
}

// worker drives one IMAP connection to one instance and delivers over LMTP
// and "letterbox deliver" through the same instance.
type worker struct {
	name  string
	in    *instance
	prob  *problems
	notes *problems
	rng   *rand.Rand
	sess  *session
	cond  bool // CONDSTORE enabled on sess

	msgs    []*tracked
	pending []*tracked // delivered, UID not learnt yet
	seq     int
	modSeqs []modSeqEvent // from STORE replies, with CONDSTORE
}

func newWorker(name string, in *instance, prob, notes *problems, seed uint64) *worker {
	return &worker{name: name, in: in, prob: prob, notes: notes, rng: rand.New(rand.NewPCG(seed, 10))}
}

func (w *worker) newID(via string) string {
	w.seq++
	return fmt.Sprintf("%s-%d.%s@clustertest.invalid", w.name, w.seq, via)
}

// connect (re)opens the session with INBOX selected.
func (w *worker) connect() error {
	if w.sess != nil {
		select {
		case <-w.sess.Closed():
			w.prob.add("connection lost on instance "+w.in.name, "worker %s", w.name)
			w.sess = nil
		default:
			return nil
		}
	}
	s, err := dialIMAP(w.in, w.prob, nil)
	if err != nil {
		return err
	}
	w.cond = s.Caps().Has(imap.CapCondStore)
	if _, err := s.Select("INBOX", &imap.SelectOptions{CondStore: w.cond}).Wait(); err != nil {
		s.Close()
		return fmt.Errorf("SELECT INBOX: %w", err)
	}
	w.sess = s
	return nil
}

func (w *worker) close() {
	if w.sess != nil {
		w.sess.logout()
		w.sess = nil
	}
}

// run does ops random operations.
func (w *worker) run(ops int) {
	defer w.close()
	for range ops {
		if err := w.connect(); err != nil {
			w.prob.add("cannot connect to instance "+w.in.name, "worker %s: %v", w.name, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		w.step()
	}
}

func (w *worker) step() {
	if len(w.pending) > 0 && w.rng.IntN(3) == 0 {
		w.resolve()
	}
	switch r := w.rng.IntN(100); {
	case r < 30:
		w.doAppend()
	case r < 42:
		w.doLMTP()
	case r < 50:
		w.doDeliver()
	case r < 72:
		w.doStore()
	case r < 80:
		w.doExpunge()
	case r < 90:
		w.doCopy()
	default:
		w.doMove()
	}
}

// pick returns a random message of ours in INBOX whose UID is known, or
// nil.
func (w *worker) pick(filter func(*tracked) bool) *tracked {
	var c []*tracked
	for _, m := range w.msgs {
		if m.folder == "INBOX" && !m.gone && !m.unsure && m.uid != 0 && (filter == nil || filter(m)) {
			c = append(c, m)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[w.rng.IntN(len(c))]
}

func (w *worker) randomFlags(min int) []imap.Flag {
	n := min + w.rng.IntN(3)
	perm := w.rng.Perm(len(workFlags))
	out := make([]imap.Flag, 0, n)
	for _, i := range perm[:n] {
		out = append(out, workFlags[i])
	}
	return out
}

func flagMap(flags []imap.Flag) map[string]bool {
	m := make(map[string]bool)
	for _, f := range flags {
		m[strings.ToLower(string(f))] = true
	}
	return m
}

func (w *worker) fail(op string, m *tracked, err error) {
	if m != nil {
		m.unsure = true
	}
	w.prob.add(op+" failed on instance "+w.in.name, "%s: %v", w.name, err)
}

func (w *worker) doAppend() {
	m := &tracked{id: w.newID("append"), folder: "INBOX"}
	flags := w.randomFlags(0)
	w.msgs = append(w.msgs, m)
	uid, err := appendMessage(w.sess.Client, "INBOX", message(m.id, w.rng.IntN(20)), flags)
	if err != nil {
		w.fail("APPEND", m, err)
		return
	}
	if uid == 0 {
		w.prob.add("APPEND without APPENDUID on instance "+w.in.name, "%s", m.id)
	}
	m.uid, m.flags = uid, flagMap(flags)
}

func (w *worker) doLMTP() {
	m := &tracked{id: w.newID("lmtp"), folder: "INBOX", flags: map[string]bool{}}
	w.msgs = append(w.msgs, m)
	_, lmtpAddr := w.in.addrs()
	if err := lmtpDeliver(lmtpAddr, testUser+"@example.org", message(m.id, w.rng.IntN(20))); err != nil {
		w.fail("LMTP delivery", m, err)
		return
	}
	w.pending = append(w.pending, m)
}

func (w *worker) doDeliver() {
	m := &tracked{id: w.newID("deliver"), folder: "INBOX", flags: map[string]bool{}}
	w.msgs = append(w.msgs, m)
	if err := w.in.deliver(testUser, message(m.id, w.rng.IntN(20))); err != nil {
		w.fail("letterbox deliver", m, err)
		return
	}
	w.pending = append(w.pending, m)
}

// resolve learns the UID of one delivered message by SEARCH.
func (w *worker) resolve() {
	m := w.pending[0]
	data, err := w.sess.UIDSearch(&imap.SearchCriteria{
		Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "<" + m.id + ">"}},
	}, nil).Wait()
	if err != nil {
		w.fail("UID SEARCH", nil, err)
		return
	}
	switch uids := data.AllUIDs(); len(uids) {
	case 0:
		// Not synced yet; try again later, and note it.
		m.tries++
		// RFC 3501 lets a server announce a new message only with the
		// response to the command that follows.
		w.notes.add("delivered message not yet in the session's view at its next SEARCH, instance "+w.in.name, "%s", m.id)
		if m.tries < 5 {
			w.pending = append(w.pending[1:], m)
			return
		}
	case 1:
		m.uid = uids[0]
	default:
		w.prob.add("SEARCH finds one message more than once on instance "+w.in.name, "%s: UIDs %v", m.id, uids)
		m.unsure = true
	}
	w.pending = w.pending[1:]
}

func (w *worker) doStore() {
	m := w.pick(nil)
	if m == nil {
		w.doAppend()
		return
	}
	op := imap.StoreFlagsAdd
	if w.rng.IntN(2) == 0 {
		op = imap.StoreFlagsDel
	}
	flags := w.randomFlags(1)
	bufs, err := w.sess.Store(uidSet(m.uid), &imap.StoreFlags{Op: op, Flags: flags}, nil).Collect()
	if err != nil {
		w.fail("STORE", m, err)
		return
	}
	// A STORE that leaves the flags as they were is no change and gets
	// no new MODSEQ (RFC 7162 §3.1.3): it is left out of the MODSEQ
	// checks.
	changed := false
	for _, f := range flags {
		k := strings.ToLower(string(f))
		changed = changed || m.flags[k] != (op == imap.StoreFlagsAdd)
		m.flags[k] = op == imap.StoreFlagsAdd
	}
	var got *fetchedFlags
	for _, b := range bufs {
		if b.UID == m.uid {
			got = &fetchedFlags{flags: b.Flags, modSeq: b.ModSeq}
		}
	}
	if got == nil {
		w.prob.add("STORE answered no FETCH for a message only its owner expunges, instance "+w.in.name, "%s UID %d", m.id, m.uid)
		return
	}
	if want, have := m.flagString(), withoutNoise(normFlags(got.flags)); want != have {
		w.prob.add("STORE reply shows other flags than the owner's changes, instance "+w.in.name, "%s UID %d: want %q, got %q", m.id, m.uid, want, have)
	}
	if w.cond && changed {
		w.modSeqs = append(w.modSeqs, modSeqEvent{folder: "INBOX", uid: m.uid, modSeq: got.modSeq, what: w.name + " STORE"})
	}
}

type fetchedFlags struct {
	flags  []imap.Flag
	modSeq uint64
}

// withoutNoise drops noiseFlag from a normalized flag string.
func withoutNoise(s string) string {
	var out []string
	for _, f := range strings.Fields(s) {
		if f != noiseFlag {
			out = append(out, f)
		}
	}
	return strings.Join(out, " ")
}

func (w *worker) doExpunge() {
	m := w.pick(nil)
	if m == nil {
		w.doAppend()
		return
	}
	set := uidSet(m.uid)
	if err := w.sess.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		w.fail("STORE \\Deleted", m, err)
		return
	}
	// Plain EXPUNGE also removes other workers' \Deleted messages, which
	// are on their way out anyway.
	var err error
	if w.rng.IntN(2) == 0 {
		_, err = w.sess.UIDExpunge(set).Collect()
	} else {
		_, err = w.sess.Expunge().Collect()
	}
	if err != nil {
		w.fail("EXPUNGE", m, err)
		return
	}
	m.gone = true
}

func (w *worker) doCopy() {
	m := w.pick(func(m *tracked) bool { return !m.copied })
	if m == nil {
		w.doAppend()
		return
	}
	data, err := w.sess.Copy(uidSet(m.uid), folderCopies).Wait()
	if err != nil {
		// The copy may have been made: its fate is unknown.
		m.copied = true
		w.msgs = append(w.msgs, &tracked{id: m.id, folder: folderCopies, unsure: true})
		w.fail("COPY", nil, err)
		return
	}
	m.copied = true
	c := &tracked{id: m.id, folder: folderCopies, flags: clone(m.flags)}
	w.msgs = append(w.msgs, c)
	if uids, ok := data.DestUIDs.Nums(); ok && len(uids) == 1 {
		c.uid = uids[0]
	} else {
		w.prob.add("COPY said OK without one COPYUID, instance "+w.in.name, "%s UID %d: COPYUID %v", m.id, m.uid, data.DestUIDs)
	}
}

func (w *worker) doMove() {
	m := w.pick(nil)
	if m == nil {
		w.doAppend()
		return
	}
	data, err := w.sess.Move(uidSet(m.uid), folderMoved).Wait()
	if err != nil {
		w.fail("MOVE", m, err)
		return
	}
	m.gone = true
	c := &tracked{id: m.id, folder: folderMoved, flags: clone(m.flags)}
	w.msgs = append(w.msgs, c)
	if uids, ok := data.DestUIDs.(imap.UIDSet); ok && len(uids) == 1 && uids[0].Start == uids[0].Stop {
		c.uid = uids[0].Start
	} else {
		w.prob.add("MOVE said OK without one COPYUID, instance "+w.in.name, "%s UID %d: COPYUID %v", m.id, m.uid, data.DestUIDs)
	}
}

func clone(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// noise changes noiseFlag on random UIDs of INBOX through its instance
// until stop is closed, so that files are renamed while their owners copy,
// move and flag them.
func noise(in *instance, prob, notes *problems, seed uint64, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(seed, 11))
	var s *session
	defer func() {
		if s != nil {
			s.logout()
		}
	}()
	for {
		select {
		case <-stop:
			return
		default:
		}
		if s == nil {
			var err error
			if s, err = dialIMAP(in, prob, nil); err == nil {
				_, err = s.Select("INBOX", nil).Wait()
			}
			if err != nil {
				prob.add("noise client cannot connect/select on instance "+in.name, "%v", err)
				s = nil
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		mbox := s.Mailbox()
		if mbox == nil || mbox.NumMessages == 0 {
			time.Sleep(20 * time.Millisecond)
			if err := s.Noop().Wait(); err != nil {
				prob.add("noise NOOP failed on instance "+in.name, "%v", err)
				s.Close()
				s = nil
			}
			continue
		}
		op := imap.StoreFlagsAdd
		if rng.IntN(2) == 0 {
			op = imap.StoreFlagsDel
		}
		// A sequence-number range: whatever is there now.
		lo := 1 + rng.Uint32N(mbox.NumMessages)
		var set imap.SeqSet
		set.AddRange(lo, min(lo+rng.Uint32N(3), mbox.NumMessages))
		err := s.Store(set, &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{noiseFlag}}, nil).Close()
		var ierr *imap.Error
		if errors.As(err, &ierr) {
			// RFC 2180 4.2 lets a server refuse to change a message
			// another session expunged: noted, not a failure.
			notes.add("noise STORE refused on instance "+in.name, "%v", err)
		} else if err != nil {
			prob.add("noise STORE failed on instance "+in.name, "%v", err)
			s.Close()
			s = nil
		}
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
	}
}

// lmtpDeliver delivers msg to rcpt over LMTP and returns the recipient's
// reply as an error unless it is 250.
func lmtpDeliver(addr, rcpt string, msg []byte) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("clustertest.invalid"); err != nil {
		return err
	}
	if err := c.Mail("ct@example.org", nil); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt, nil); err != nil {
		return err
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := wc.Write(msg); err != nil {
		return err
	}
	if _, err := wc.CloseWithLMTPResponse(); err != nil {
		return err
	}
	return c.Quit()
}
