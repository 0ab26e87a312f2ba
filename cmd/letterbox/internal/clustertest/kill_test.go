package clustertest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestKill9 kills the real server with SIGKILL at random moments while
// writers APPEND and STORE over IMAP, deliver over LMTP and run "letterbox
// deliver", and restarts it on the same data. After every restart: the
// first SELECT and APPEND succeed (within CLUSTERTEST_KILL_BOUND), nothing
// acknowledged is lost, a UID once seen for a message never changes and is
// never given to another, UIDVALIDITY stays, flags are those acknowledged
// (or those of the change in flight at the kill), the uidlist has no
// duplicate lines; and MODSEQs never go back (through CONDSTORE).
func TestKill9(t *testing.T) {
	rounds := envInt("CLUSTERTEST_KILL_ROUNDS", 30)
	if testing.Short() {
		rounds = min(rounds, 5)
	}
	bound := 60 * time.Second
	if d, err := time.ParseDuration(os.Getenv("CLUSTERTEST_KILL_BOUND")); err == nil && d > 0 {
		bound = d
	}
	keepGoing := os.Getenv("CLUSTERTEST_KILL_KEEPGOING") == "1"

	c := newCluster(t, 1)
	in := c.instances[0]
	prob, notes := newProblems(), newProblems()
	k := &killModel{msgs: make(map[string]*kmsg), uidOwner: make(map[imap.UID]string)}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	lockPath := filepath.Join(c.maildir(0), "dovecot-uidlist.lock")

	var history [][]*snapshot
	var firstOps []time.Duration
	staleLocks := 0
	for round := 1; round <= rounds+1; round++ {
		t0 := time.Now()
		in.start(t)
		ready := time.Since(t0)
		took, err := k.firstOp(in, prob, notes, bound, keepGoing)
		firstOps = append(firstOps, took)
		t.Logf("round %d: ready %v after the start; then the first SELECT+APPEND took %v",
			round, ready.Round(time.Millisecond), took.Round(time.Millisecond))
		if err != nil {
			prob.add("first SELECT+APPEND after a kill -9 did not succeed within "+bound.String(), "round %d: %v", round, err)
			if !keepGoing {
				break
			}
		}
		snap, err := takeSnapshot(in, "INBOX", prob)
		if err != nil {
			prob.add("snapshot after restart failed", "round %d: %v", round, err)
		} else {
			k.verify(prob, snap, round)
			history = append(history, []*snapshot{snap})
		}
		checkUidlist(prob, c.maildir(0), "INBOX", fmt.Sprintf("round %d", round))
		if round > rounds {
			break // the last start only verifies
		}

		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 2 {
			seed := rng.Uint64() // drawn here: rng is not for several goroutines
			wg.Go(func() { k.imapWriter(in, fmt.Sprintf("r%dw%d", round, i), seed, stop) })
		}
		wg.Go(func() { k.lmtpWriter(in, fmt.Sprintf("r%dl", round), stop) })
		wg.Go(func() { k.deliverWriter(in, notes, fmt.Sprintf("r%dd", round), stop) })
		time.Sleep(time.Duration(50+rng.IntN(750)) * time.Millisecond)
		if err := in.crash(); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		if b, err := os.ReadFile(lockPath); err == nil {
			staleLocks++
			notes.add("kill -9 left dovecot-uidlist.lock behind", "round %d: %q", round, strings.TrimSpace(string(b)))
		}
	}
	if err := in.stop(); err != nil {
		t.Error(err)
	}

	acked, maybe := k.counts()
	sorted := append([]time.Duration(nil), firstOps...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	t.Logf("%d kills; %d messages acknowledged, %d in flight at a kill and never seen; INBOX dovecot-uidlist.lock left behind after %d kills",
		len(firstOps)-1, acked, maybe, staleLocks)
	t.Logf("first SELECT+APPEND after a start: median %v, max %v", sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
	checkModSeqs(t.Logf, prob, nil, history)
	checkLogs(prob, notes, c.instances)
	notes.report(t.Logf, "note: ")
	prob.report(t.Errorf, "FAIL: ")
}

// killModel is what the kill test knows of the messages its writers made.
type killModel struct {
	mu       sync.Mutex
	msgs     map[string]*kmsg
	uidOwner map[imap.UID]string // every UID seen → its message
	validity uint32
}

type kmsg struct {
	id     string
	acked  bool     // acknowledged, or seen in a snapshot since
	uid    imap.UID // the first UID seen for it; 0 if none yet
	flags  string   // normalized, as acknowledged
	alt    string   // flags of a STORE in flight at a kill
	hasAlt bool
}

func (k *killModel) add(id string) *kmsg {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := &kmsg{id: id}
	k.msgs[id] = m
	return m
}

func (k *killModel) counts() (acked, maybe int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, m := range k.msgs {
		if m.acked {
			acked++
		} else {
			maybe++
		}
	}
	return
}

// firstOp is what a client does after the restart: SELECT INBOX and APPEND,
// tried again until it works or bound passes (with keepGoing, until three
// minutes pass, to measure how long it really takes).
func (k *killModel) firstOp(in *instance, prob, notes *problems, bound time.Duration, keepGoing bool) (time.Duration, error) {
	start := time.Now()
	limit := bound
	if keepGoing {
		limit = max(bound, 3*time.Minute)
	}
	var last error
	for try := 0; time.Since(start) < limit; try++ {
		// A new message per try: a try cut off by the deadline may still
		// have stored its message.
		id := fmt.Sprintf("probe-%d-%d@clustertest.invalid", start.UnixNano(), try)
		m := k.add(id)
		err := func() error {
			s, err := dialIMAPUntil(in, prob, nil, start.Add(limit))
			if err != nil {
				return err
			}
			defer s.logout()
			if _, err := s.Select("INBOX", nil).Wait(); err != nil {
				return fmt.Errorf("SELECT: %w", err)
			}
			uid, err := appendMessage(s.Client, "INBOX", message(id, 0), nil)
			if err != nil {
				return fmt.Errorf("APPEND: %w", err)
			}
			k.mu.Lock()
			m.acked, m.uid = true, uid
			k.mu.Unlock()
			return nil
		}()
		if err == nil {
			took := time.Since(start)
			if took > bound {
				return took, fmt.Errorf("succeeded only after %v", took.Round(time.Millisecond))
			}
			return took, nil
		}
		notes.add("SELECT/APPEND after a kill -9 failed, tried again", "%v", err)
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start), last
}

// verify checks a snapshot of INBOX taken after a restart.
func (k *killModel) verify(prob *problems, s *snapshot, round int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.validity == 0 {
		k.validity = s.uidValidity
	} else if s.uidValidity != k.validity {
		prob.add("UIDVALIDITY changed after a kill -9", "round %d: %d, was %d", round, s.uidValidity, k.validity)
	}
	present := make(map[string]int)
	for _, f := range s.msgs {
		present[f.id]++
		if owner, ok := k.uidOwner[f.uid]; ok && owner != f.id {
			prob.add("UID given to another message after a kill -9", "round %d: UID %d was %s, now %s", round, f.uid, owner, f.id)
		}
		k.uidOwner[f.uid] = f.id
		m := k.msgs[f.id]
		if m == nil {
			prob.add("unknown message after a kill -9", "round %d: %s UID %d", round, f.id, f.uid)
			continue
		}
		m.acked = true // seen: it must stay from now on
		if m.uid == 0 {
			m.uid = f.uid
		} else if m.uid != f.uid {
			prob.add("message changed UID after a kill -9", "round %d: %s UID %d, was %d", round, f.id, f.uid, m.uid)
		}
		switch {
		case f.flags == m.flags:
		case m.hasAlt && f.flags == m.alt:
			m.flags = m.alt
		default:
			prob.add("flags differ from the acknowledged changes after a kill -9", "round %d: %s UID %d: %q, want %q", round, f.id, f.uid, f.flags, m.flags)
			m.flags = f.flags
		}
		m.hasAlt = false
	}
	for id, n := range present {
		if n > 1 {
			prob.add("message present more than once after a kill -9", "round %d: %s %d times", round, id, n)
		}
	}
	for _, m := range k.msgs {
		if m.acked && present[m.id] == 0 {
			prob.add("acknowledged message lost after a kill -9", "round %d: %s (UID %d)", round, m.id, m.uid)
			m.acked = false // counted once
		}
	}
}

// imapWriter APPENDs and changes flags on its own messages until the
// server dies or stop is closed.
func (k *killModel) imapWriter(in *instance, name string, seed uint64, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(seed, 3))
	s, err := dialIMAP(in, newProblems(), nil)
	if err != nil {
		return
	}
	defer s.Close()
	if _, err := s.Select("INBOX", nil).Wait(); err != nil {
		return
	}
	var mine []*kmsg
	uids := make(map[*kmsg]imap.UID)
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		if len(mine) == 0 || rng.IntN(10) < 6 {
			flags := []imap.Flag{workFlags[rng.IntN(len(workFlags))]}
			m := k.add(fmt.Sprintf("%s-%d.append@clustertest.invalid", name, n))
			k.mu.Lock()
			m.alt, m.hasAlt = normFlags(flags), true
			k.mu.Unlock()
			uid, err := appendMessage(s.Client, "INBOX", message(m.id, rng.IntN(10)), flags)
			if err != nil {
				return // the server died
			}
			k.mu.Lock()
			m.acked, m.uid, m.flags, m.hasAlt = true, uid, normFlags(flags), false
			k.mu.Unlock()
			mine, uids[m] = append(mine, m), uid
			continue
		}
		m := mine[rng.IntN(len(mine))]
		op := imap.StoreFlagsAdd
		if rng.IntN(2) == 0 {
			op = imap.StoreFlagsDel
		}
		flags := []imap.Flag{workFlags[rng.IntN(len(workFlags))]}
		k.mu.Lock()
		set := make(map[string]bool)
		for _, f := range strings.Fields(m.flags) {
			set[f] = true
		}
		set[strings.ToLower(string(flags[0]))] = op == imap.StoreFlagsAdd
		var after []string
		for f, on := range set {
			if on {
				after = append(after, f)
			}
		}
		m.alt, m.hasAlt = normFlags(after), true
		k.mu.Unlock()
		if err := s.Store(uidSet(uids[m]), &imap.StoreFlags{Op: op, Silent: true, Flags: flags}, nil).Close(); err != nil {
			return
		}
		k.mu.Lock()
		m.flags, m.hasAlt = m.alt, false
		k.mu.Unlock()
	}
}

// lmtpWriter delivers over LMTP until the server dies or stop is closed.
func (k *killModel) lmtpWriter(in *instance, name string, stop <-chan struct{}) {
	_, addr := in.addrs()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		m := k.add(fmt.Sprintf("%s-%d.lmtp@clustertest.invalid", name, n))
		if err := lmtpDeliver(addr, testUser+"@example.org", message(m.id, 5)); err != nil {
			return
		}
		k.mu.Lock()
		m.acked = true
		k.mu.Unlock()
	}
}

// deliverWriter runs "letterbox deliver" until stop is closed; it does not
// need the server.
func (k *killModel) deliverWriter(in *instance, notes *problems, name string, stop <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		m := k.add(fmt.Sprintf("%s-%d.deliver@clustertest.invalid", name, n))
		if err := in.deliver(testUser, message(m.id, 5)); err != nil {
			// Not acknowledged: the MTA would try again.
			notes.add("letterbox deliver failed during the kill test", "%v", err)
			continue
		}
		k.mu.Lock()
		m.acked = true
		k.mu.Unlock()
	}
}
