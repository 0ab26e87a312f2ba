package store_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// Another program (Dovecot, a script) renames files in cur/ without a word
// to the log, as fast as it can, while we read the folder over and over:
// listings taken while the directory changes may miss files, and a missed
// file must never be taken for an expunged one.
func TestScanNeverInventsExpunges(t *testing.T) {
	tmpl := bigInbox(t, 2000)
	s, err := store.Open(store.Options{PathTemplate: tmpl, NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := s.User("big")
	m := openBox(t, u, "INBOX")
	mr := watch(t, m, "INBOX")
	cur := filepath.Join(u.Root(), "cur")
	var expunges atomic.Int32
	_, cancel := m.Watch(func(c store.Change) {
		if c.Kind == store.Expunged {
			expunges.Add(1)
		}
	})
	defer cancel()

	stop := make(chan struct{})
	var renames atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(1))
		names, _ := filepath.Glob(filepath.Join(cur, "*"))
		for {
			select {
			case <-stop:
				return
			default:
			}
			i := rng.Intn(len(names))
			n := names[i]
			// Toggle \Flagged, keeping the letters in order.
			base, info, _ := strings.Cut(n, ":2,")
			if strings.Contains(info, "F") {
				info = strings.ReplaceAll(info, "F", "")
			} else {
				info = "F" + info
			}
			next := base + ":2," + info
			if os.Rename(n, next) == nil {
				names[i] = next
				renames.Add(1)
			}
		}
	}()
	ctx := context.Background()
	deadline := time.Now().Add(time.Second)
	reads := 0
	for time.Now().Before(deadline) {
		if err := m.Read(ctx, func(v *store.View) {
			if v.Len() != 2000 {
				t.Errorf("%d messages", v.Len())
			}
		}); err != nil {
			t.Fatal(err)
		}
		reads++
	}
	close(stop)
	wg.Wait()
	if n := expunges.Load(); n != 0 {
		t.Errorf("%d messages taken for expunged while renamed (%d renames, %d reads)", n, renames.Load(), reads)
	}
	// Once the renamer stops, the index comes to agree with the disk.
	onDisk := map[string]store.Flag{}
	names, _ := filepath.Glob(filepath.Join(cur, "*"))
	for _, n := range names {
		base, info, _ := strings.Cut(filepath.Base(n), ":2,")
		var f store.Flag
		if strings.Contains(info, "F") {
			f |= store.FlagFlagged
		}
		if strings.Contains(info, "S") {
			f |= store.FlagSeen
		}
		if strings.Contains(info, "R") {
			f |= store.FlagAnswered
		}
		onDisk[base] = f
	}
	if len(onDisk) != 2000 {
		t.Fatalf("%d files on disk", len(onDisk))
	}
	flagged := 0
	m.Read(ctx, func(v *store.View) {
		for i := 0; i < v.Len(); i++ {
			if v.At(i).Flags.Has(store.FlagFlagged) {
				flagged++
			}
		}
	})
	want := 0
	for _, f := range onDisk {
		if f.Has(store.FlagFlagged) {
			want++
		}
	}
	if flagged != want {
		t.Errorf("%d flagged in the index, %d on disk", flagged, want)
	}
	mr.check(t, m)
	t.Logf("%d renames by the other program, %d reads", renames.Load(), reads)
}

// The log can be deleted at any moment, also while several instances work
// on the folder: they rebuild it, lose no message and no flag, and their
// feeds never see a MODSEQ go back.
func TestLogDeletedWhileRunning(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	l := newLedger()
	type inst struct {
		u              *store.User
		inbox, archive *store.Mailbox
		mr             *mirror
	}
	var insts []inst
	for i := 0; i < 2; i++ {
		_, u := newUser(t, store.Options{PathTemplate: tmpl, PollInterval: 5 * time.Millisecond})
		in := inst{u: u, inbox: openBox(t, u, "INBOX"), archive: openBox(t, u, "Archive")}
		in.mr = watch(t, in.inbox, fmt.Sprintf("instance %d", i))
		insts = append(insts, in)
	}
	root := insts[0].u.Root()
	stop := make(chan struct{})
	var deletions atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			for _, p := range []string{filepath.Join(root, "letterbox-log"), filepath.Join(root, ".Archive", "letterbox-log")} {
				if os.Remove(p) == nil {
					deletions.Add(1)
				}
			}
		}
	}()
	var work sync.WaitGroup
	for i, in := range insts {
		work.Add(1)
		w := &workload{t: t, u: in.u, inbox: in.inbox, archive: in.archive, l: l, tag: fmt.Sprintf("i%d", i)}
		go func(seed int64) {
			defer work.Done()
			if err := w.run(150, seed); err != nil {
				t.Error(err)
			}
		}(int64(i))
	}
	work.Wait()
	close(stop)
	wg.Wait()
	if deletions.Load() == 0 {
		t.Fatal("the log was never deleted")
	}
	a, _ := snapshotOf(t, insts[0].inbox)
	b, _ := snapshotOf(t, insts[1].inbox)
	// MODSEQs may differ where one instance rebuilt: compare the rest.
	strip := func(s string) string {
		var out []string
		for _, line := range strings.Split(s, "\n") {
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				line = line[:i]
			}
			out = append(out, line)
		}
		return strings.Join(out, "\n")
	}
	if strip(a) != strip(b) {
		t.Errorf("instances disagree:\n%s\nvs\n%s", a, b)
	}
	for _, in := range insts {
		in.mr.check(t, in.inbox)
	}
	if t.Failed() {
		ul, _ := os.ReadFile(filepath.Join(root, "dovecot-uidlist"))
		t.Logf("uidlist:\n%s", ul)
		t.Logf("log:\n%s", store.DumpLog(filepath.Join(root, "letterbox-log")))
	}
	l.check(t, insts[0].inbox, insts[0].archive)
	t.Logf("log deleted %d times", deletions.Load())
}

const killWorkerEnv = "LETTERBOX_STORE_KILL_WORKER"

// TestKillWorkerProcess is not a test: it appends and changes flags until
// it is killed, printing what it was told.
func TestKillWorkerProcess(t *testing.T) {
	tmpl := os.Getenv(killWorkerEnv)
	if tmpl == "" {
		t.Skip("only runs as a worker of TestKilledWriters")
	}
	s, err := store.Open(store.Options{PathTemplate: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := s.User("alice")
	ctx := context.Background()
	m, err := u.Open(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		id := fmt.Sprintf("<%d-%d@kill>", os.Getpid(), i)
		uid, err := m.Append(ctx, strings.NewReader(mailText(id)), store.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var hms uint64
		m.Read(ctx, func(v *store.View) { hms = v.HighestModSeq() })
		fmt.Fprintf(w, "ACK %d %s %d\n", uid, id, hms)
		w.Flush()
		if _, err := m.SetFlags(ctx, []uint32{uid}, store.FlagsAdd, store.FlagSeen, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// Writers killed with SIGKILL at random moments, again and again: nothing
// they were told is stored goes missing, no UID is given twice, and
// neither UIDVALIDITY nor HIGHESTMODSEQ ever goes back. The next process
// gets the folder (and its lock) at once.
func TestKilledWriters(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	rounds := 15
	if v, err := strconv.Atoi(os.Getenv("LETTERBOX_KILL_ROUNDS")); err == nil {
		rounds = v
	}
	tmpl := filepath.Join(t.TempDir(), "{user}", "Maildir")
	acked := map[uint32]string{}
	var lastHMS uint64
	var validity uint32
	rng := rand.New(rand.NewSource(7))
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillWorkerProcess$")
		cmd.Env = append(os.Environ(), killWorkerEnv+"="+tmpl)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1000)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		time.Sleep(time.Duration(20+rng.Intn(120)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		for line := range lines {
			f := strings.Fields(line)
			if len(f) != 4 || f[0] != "ACK" {
				continue
			}
			uid, _ := strconv.ParseUint(f[1], 10, 32)
			hms, _ := strconv.ParseUint(f[3], 10, 64)
			if prev, ok := acked[uint32(uid)]; ok && prev != f[2] {
				t.Errorf("UID %d given to %s and %s", uid, prev, f[2])
			}
			acked[uint32(uid)] = f[2]
			lastHMS = max(lastHMS, hms)
		}
		// A fresh process: the lock of the dead one must not stop it
		// (LockTimeout far below the 120 s age rule).
		s, err := store.Open(store.Options{PathTemplate: tmpl, NoWatch: true, LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := s.User("alice")
		m, err := u.Open(context.Background(), "INBOX")
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		if _, err := m.Append(context.Background(), strings.NewReader(mailText(fmt.Sprintf("<check-%d@kill>", round))), store.AppendOptions{}); err != nil {
			t.Fatalf("round %d: append after kill: %v", round, err)
		}
		var msgs []store.Message
		var v32 uint32
		var hms uint64
		m.Read(context.Background(), func(v *store.View) {
			v32, hms = v.UIDValidity(), v.HighestModSeq()
			for i := 0; i < v.Len(); i++ {
				msgs = append(msgs, v.At(i))
			}
		})
		if validity != 0 && v32 != validity {
			t.Errorf("round %d: UIDVALIDITY %d, was %d", round, v32, validity)
		}
		validity = v32
		if hms < lastHMS {
			t.Errorf("round %d: HIGHESTMODSEQ %d below %d seen before", round, hms, lastHMS)
		}
		lastHMS = hms
		have := map[uint32]bool{}
		for _, msg := range msgs {
			have[msg.UID] = true
			if want, ok := acked[msg.UID]; ok {
				if id, _ := messageID(t, m, msg.UID); id != want {
					t.Errorf("round %d: UID %d is %s, was %s", round, msg.UID, id, want)
				}
			} else if id, _ := messageID(t, m, msg.UID); id != "" {
				acked[msg.UID] = id
			}
		}
		for uid, id := range acked {
			if !have[uid] {
				t.Errorf("round %d: acknowledged UID %d (%s) lost", round, uid, id)
			}
		}
		m.Close()
		s.Close()
	}
	root := filepath.Join(strings.TrimSuffix(tmpl, filepath.Join("{user}", "Maildir")), "alice", "Maildir")
	checkUidlist(t, root)
	t.Logf("%d rounds, %d messages", rounds, len(acked))
}
