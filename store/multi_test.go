package store_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// Several Store instances on one directory stand for several processes
// (each has its own registry, index and log follower); TestProcesses runs
// real ones. Every instance works on the same two folders at once, and
// every instance watches them as an IDLE session would.

// mirror follows a mailbox's change feed the way an IMAP session does and
// checks every change against what it was told before: sequence numbers
// in range, new UIDs only above those seen, MODSEQs never going back.
type mirror struct {
	t    testing.TB
	name string

	mu      sync.Mutex
	uids    []uint32
	flags   map[uint32]store.Flag
	modseqs map[uint32]uint64
	maxUID  uint32
	start   uint64 // HIGHESTMODSEQ when the feed started
	appends int
	errs    []string
}

func watch(t testing.TB, m *store.Mailbox, name string) *mirror {
	mr := &mirror{t: t, name: name, flags: make(map[uint32]store.Flag), modseqs: make(map[uint32]uint64)}
	cancel, err := m.Subscribe(context.Background(), mr.change, func(v *store.View) {
		for i := 0; i < v.Len(); i++ {
			msg := v.At(i)
			mr.uids = append(mr.uids, msg.UID)
			mr.flags[msg.UID] = msg.Flags
			mr.modseqs[msg.UID] = msg.ModSeq
			mr.maxUID = max(mr.maxUID, msg.UID)
		}
		mr.start = v.HighestModSeq()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return mr
}

func (mr *mirror) fail(format string, args ...any) {
	mr.errs = append(mr.errs, mr.name+": "+fmt.Sprintf(format, args...))
}

func (mr *mirror) change(c store.Change) {
	mr.mu.Lock()
	defer mr.mu.Unlock()
	// Every change is newer than the state the feed started from, and a
	// message's MODSEQ only grows.
	if c.Kind == store.Appended || c.Kind == store.Expunged || c.Kind == store.FlagsChanged {
		if c.ModSeq <= mr.start {
			mr.fail("%v of UID %d with MODSEQ %d, not above %d at the start", c.Kind, c.UID, c.ModSeq, mr.start)
		}
		if c.ModSeq <= mr.modseqs[c.UID] {
			mr.fail("%v of UID %d with MODSEQ %d after %d", c.Kind, c.UID, c.ModSeq, mr.modseqs[c.UID])
		}
		mr.modseqs[c.UID] = c.ModSeq
	}
	switch c.Kind {
	case store.Appended:
		if c.UID <= mr.maxUID {
			mr.fail("new message UID %d after UID %d was announced", c.UID, mr.maxUID)
		}
		mr.maxUID = c.UID
		mr.uids = append(mr.uids, c.UID)
		mr.appends++
		if c.Seq != len(mr.uids) {
			mr.fail("Appended seq %d with %d messages", c.Seq, len(mr.uids))
		}
	case store.Expunged:
		if c.Seq < 1 || c.Seq > len(mr.uids) || mr.uids[c.Seq-1] != c.UID {
			mr.fail("Expunged seq %d UID %d does not match", c.Seq, c.UID)
			return
		}
		mr.uids = append(mr.uids[:c.Seq-1], mr.uids[c.Seq:]...)
		delete(mr.flags, c.UID)
	case store.FlagsChanged:
		if c.Seq < 1 || c.Seq > len(mr.uids) || mr.uids[c.Seq-1] != c.UID {
			mr.fail("FlagsChanged seq %d UID %d does not match", c.Seq, c.UID)
			return
		}
		mr.flags[c.UID] = c.Flags
	case store.Invalidated:
		mr.fail("Invalidated")
	}
}

// check compares the mirror with the mailbox as it is now.
func (mr *mirror) check(t testing.TB, m *store.Mailbox) {
	t.Helper()
	var msgs []store.Message
	if err := m.Read(context.Background(), func(v *store.View) {
		for i := 0; i < v.Len(); i++ {
			msgs = append(msgs, v.At(i))
		}
	}); err != nil {
		t.Fatal(err)
	}
	mr.mu.Lock()
	defer mr.mu.Unlock()
	for _, e := range mr.errs {
		t.Error(e)
	}
	if len(msgs) != len(mr.uids) {
		t.Errorf("%s: feed has %d messages, view %d", mr.name, len(mr.uids), len(msgs))
		return
	}
	for i, msg := range msgs {
		if mr.uids[i] != msg.UID {
			t.Errorf("%s: seq %d is UID %d in the feed, %d in the view", mr.name, i+1, mr.uids[i], msg.UID)
			return
		}
		if f, ok := mr.flags[msg.UID]; ok && f != msg.Flags {
			t.Errorf("%s: UID %d flags %v in the feed, %v in the view", mr.name, msg.UID, f, msg.Flags)
		}
		if msg.ModSeq < mr.modseqs[msg.UID] {
			t.Errorf("%s: UID %d MODSEQ %d in the view, %d in the feed", mr.name, msg.UID, msg.ModSeq, mr.modseqs[msg.UID])
		}
	}
}

// ledger records what the workers were told, to check against the end.
type ledger struct {
	mu      sync.Mutex
	inbox   map[string]int // Message-ID → copies expected in INBOX
	archive map[string]int
}

func newLedger() *ledger {
	return &ledger{inbox: make(map[string]int), archive: make(map[string]int)}
}

func (l *ledger) add(box map[string]int, id string, n int) {
	l.mu.Lock()
	box[id] += n
	l.mu.Unlock()
}

// check compares the mailboxes with what the workers were told.
func (l *ledger) check(t *testing.T, inbox, archive *store.Mailbox) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, box := range []struct {
		name string
		want map[string]int
		m    *store.Mailbox
	}{{"INBOX", l.inbox, inbox}, {"Archive", l.archive, archive}} {
		if box.m == nil {
			continue
		}
		got := contents(t, box.m)
		for id, c := range box.want {
			if c < 0 || c > 1 && box.name == "INBOX" {
				t.Errorf("%s: ledger says %d of %s", box.name, c, id)
			}
			if got[id] != c {
				t.Errorf("%s: %d of %s, want %d", box.name, got[id], id, c)
			}
		}
		for id, c := range got {
			if _, ok := box.want[id]; !ok {
				t.Errorf("%s: %d of %s, which nobody stored", box.name, c, id)
			}
		}
	}
}

// messageID reads the Message-ID the workload puts on the first line.
func messageID(t testing.TB, m *store.Mailbox, uid uint32) (string, bool) {
	b, err := m.OpenMessage(context.Background(), uid)
	if err != nil {
		return "", false
	}
	defer b.Close()
	line, _ := bufio.NewReader(b).ReadString('\n')
	return strings.TrimSpace(strings.TrimPrefix(line, "Message-ID:")), true
}

func mailText(id string) string {
	return fmt.Sprintf("Message-ID: %s\nSubject: load\n\nbody of %s\n", id, id)
}

// workload runs ops against one instance until stop closes.
type workload struct {
	t       testing.TB
	u       *store.User
	inbox   *store.Mailbox
	archive *store.Mailbox
	l       *ledger
	tag     string
}

func (w *workload) randomUID(m *store.Mailbox, rng *rand.Rand) (uint32, bool) {
	var uid uint32
	ok := false
	m.Read(context.Background(), func(v *store.View) {
		if v.Len() > 0 {
			uid, ok = v.At(rng.Intn(v.Len())).UID, true
		}
	})
	return uid, ok
}

// pick chooses a message of INBOX and reads its Message-ID.
func (w *workload) pick(rng *rand.Rand) (uint32, string, bool) {
	uid, ok := w.randomUID(w.inbox, rng)
	if !ok {
		return 0, "", false
	}
	mid, ok := messageID(w.t, w.inbox, uid)
	return uid, mid, ok
}

func (w *workload) run(ops int, seed int64) error {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < ops; i++ {
		id := fmt.Sprintf("<%s-%d@test>", w.tag, i)
		switch r := rng.Intn(100); {
		case r < 30:
			if _, err := w.inbox.Append(ctx, strings.NewReader(mailText(id)), store.AppendOptions{Flags: store.FlagSeen}); err != nil {
				return fmt.Errorf("append: %w", err)
			}
			w.l.add(w.l.inbox, id, 1)
		case r < 40:
			if err := w.u.Deliver(ctx, "", strings.NewReader(mailText(id))); err != nil {
				return fmt.Errorf("deliver: %w", err)
			}
			w.l.add(w.l.inbox, id, 1)
		case r < 65:
			uid, ok := w.randomUID(w.inbox, rng)
			if !ok {
				continue
			}
			flags := []store.Flag{store.FlagFlagged, store.FlagAnswered, store.FlagDraft}[rng.Intn(3)]
			op := []store.FlagOp{store.FlagsAdd, store.FlagsRemove}[rng.Intn(2)]
			kw := []string{[]string{"$Label1", "work", "later"}[rng.Intn(3)]}
			if _, err := w.inbox.SetFlags(ctx, []uint32{uid}, op, flags, kw, nil); err != nil {
				return fmt.Errorf("set flags: %w", err)
			}
		case r < 78:
			uid, mid, ok := w.pick(rng)
			if !ok {
				continue
			}
			removed, err := w.inbox.Expunge(ctx, store.ExpungeOptions{UIDs: []uint32{uid}})
			if err != nil {
				return fmt.Errorf("expunge: %w", err)
			}
			if len(removed) == 1 {
				w.l.add(w.l.inbox, mid, -1)
			}
		case r < 90:
			uid, mid, ok := w.pick(rng)
			if !ok {
				continue
			}
			src, _, err := w.inbox.Copy(ctx, []uint32{uid}, w.archive)
			if err != nil {
				return fmt.Errorf("copy: %w", err)
			}
			if len(src) == 1 {
				w.l.add(w.l.archive, mid, 1)
			}
		default:
			uid, mid, ok := w.pick(rng)
			if !ok {
				continue
			}
			// Move is Copy then Expunge; done in two steps here to
			// know whether this worker's expunge removed it (another
			// worker may have expunged it first and counted it).
			src, _, err := w.inbox.Copy(ctx, []uint32{uid}, w.archive)
			if err != nil {
				return fmt.Errorf("move: %w", err)
			}
			if len(src) == 1 {
				w.l.add(w.l.archive, mid, 1)
				removed, err := w.inbox.Expunge(ctx, store.ExpungeOptions{UIDs: src})
				if err != nil {
					return fmt.Errorf("move: %w", err)
				}
				if len(removed) == 1 {
					w.l.add(w.l.inbox, mid, -1)
				}
			}
		}
	}
	return nil
}

// contents maps Message-ID to count for a mailbox.
func contents(t testing.TB, m *store.Mailbox) map[string]int {
	t.Helper()
	out := make(map[string]int)
	for _, uid := range uids(t.(*testing.T), m) {
		id, ok := messageID(t, m, uid)
		if !ok {
			t.Errorf("UID %d cannot be read", uid)
			continue
		}
		out[id]++
	}
	return out
}

// snapshotOf is what an instance says of a mailbox: UID → Message-ID and
// flags, and HIGHESTMODSEQ.
func snapshotOf(t *testing.T, m *store.Mailbox) (string, uint64) {
	var b strings.Builder
	var hms uint64
	var msgs []store.Message
	if err := m.Read(context.Background(), func(v *store.View) {
		hms = v.HighestModSeq()
		for i := 0; i < v.Len(); i++ {
			msgs = append(msgs, v.At(i))
		}
	}); err != nil {
		t.Fatal(err)
	}
	for _, msg := range msgs {
		id, _ := messageID(t, m, msg.UID)
		fmt.Fprintf(&b, "%d %s %v %v %d\n", msg.UID, id, msg.Flags, msg.Keywords, msg.ModSeq)
		if msg.ModSeq == 0 || msg.ModSeq > hms {
			t.Errorf("UID %d MODSEQ %d, HIGHESTMODSEQ %d", msg.UID, msg.ModSeq, hms)
		}
	}
	return b.String(), hms
}

// checkUidlist fails on a uidlist with a UID or a file named twice.
func checkUidlist(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	uidsSeen, bases := map[string]bool{}, map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if i == 0 {
			continue
		}
		uid, rest, _ := strings.Cut(line, " ")
		_, base, ok := strings.Cut(rest, ":")
		if !ok {
			t.Errorf("uidlist line %q", line)
			continue
		}
		if uidsSeen[uid] || bases[base] {
			t.Errorf("uidlist names UID %s or file %s twice:\n%s", uid, base, data)
			return
		}
		uidsSeen[uid], bases[base] = true, true
	}
}

func TestInstancesAgree(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d instances", n), func(t *testing.T) {
			testInstances(t, n, 120)
		})
	}
}

func testInstances(t *testing.T, n, ops int) {
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	ctx := context.Background()
	l := newLedger()
	type inst struct {
		u               *store.User
		inbox, archive  *store.Mailbox
		mInbox, mArchve *mirror
	}
	var insts []inst
	for i := 0; i < n; i++ {
		s, u := newUser(t, store.Options{PathTemplate: tmpl, PollInterval: 5 * time.Millisecond})
		_ = s
		in := inst{u: u, inbox: openBox(t, u, "INBOX"), archive: openBox(t, u, "Archive")}
		in.mInbox = watch(t, in.inbox, fmt.Sprintf("instance %d INBOX", i))
		in.mArchve = watch(t, in.archive, fmt.Sprintf("instance %d Archive", i))
		insts = append(insts, in)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n*2)
	for i, in := range insts {
		for j := 0; j < 2; j++ {
			wg.Add(1)
			w := &workload{t: t, u: in.u, inbox: in.inbox, archive: in.archive, l: l, tag: fmt.Sprintf("i%dw%d", i, j)}
			go func(seed int64) {
				defer wg.Done()
				if err := w.run(ops, seed); err != nil {
					errs <- err
				}
			}(int64(i*10 + j))
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// After the last change every instance says the same, and what the
	// workers were told holds.
	var want string
	for i, in := range insts {
		for _, m := range []*store.Mailbox{in.inbox, in.archive} {
			got, _ := snapshotOf(t, m)
			if i == 0 {
				if m == in.inbox {
					want = got
				}
				continue
			}
			_ = got
		}
		gotInbox, _ := snapshotOf(t, in.inbox)
		if gotInbox != want {
			t.Errorf("instance %d INBOX differs from instance 0:\n%s\nvs\n%s", i, gotInbox, want)
		}
		in.mInbox.check(t, in.inbox)
		in.mArchve.check(t, in.archive)
	}
	a0, _ := snapshotOf(t, insts[0].archive)
	for i, in := range insts[1:] {
		if a, _ := snapshotOf(t, in.archive); a != a0 {
			t.Errorf("instance %d Archive differs from instance 0", i+1)
		}
	}
	l.check(t, insts[0].inbox, insts[0].archive)
	root, _ := insts[0].u.Root(), ctx
	checkUidlist(t, root)
	checkUidlist(t, filepath.Join(root, ".Archive"))
}
