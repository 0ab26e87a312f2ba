package clustertest

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestTwoInstances runs two "letterbox serve" processes on one mail tree
// (on two mounts with CLUSTERTEST_ROOTS) under a concurrent
// workload through both, then checks that they agree with each other, with
// what was acknowledged and with the files on disk.
func TestTwoInstances(t *testing.T) { runCluster(t, 2) }

// TestThreeInstances is TestTwoInstances with three processes.
func TestThreeInstances(t *testing.T) { runCluster(t, 3) }

// Workload size before scaling.
const (
	// idleCatchUp bounds how long an IDLE client may take to see the last
	// changes once the workload is over: above the store's 10 s disk poll,
	// the only way one host learns of another's changes today.
	idleCatchUp = 15 * time.Second

	workersPerInstance = 3
	// opsTotal is the operations of all workers together, whatever the
	// number of instances, which keeps each test well under a minute.
	opsTotal = 900
)

func runCluster(t *testing.T, n int) {
	if testing.Short() && n > 2 {
		t.Skip("-short: two instances are enough")
	}
	c := newCluster(t, n)
	c.startAll(t)
	prob, notes := newProblems(), newProblems()

	s, err := dialIMAP(c.instances[0], prob, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{folderCopies, folderMoved} {
		if err := s.Create(f, nil).Wait(); err != nil {
			t.Fatalf("CREATE %s: %v", f, err)
		}
	}
	s.logout()

	var watchers []*idleWatcher
	for _, in := range c.instances {
		w := newIdleWatcher(in, prob, notes)
		w.start()
		watchers = append(watchers, w)
	}

	ops := scaled(opsTotal / (n * workersPerInstance))
	start := time.Now()
	var workers []*worker
	var wg sync.WaitGroup
	for i, in := range c.instances {
		for j := range workersPerInstance {
			w := newWorker(fmt.Sprintf("%s%d", in.name, j), in, prob, notes, uint64(i*100+j))
			workers = append(workers, w)
			wg.Go(func() { w.run(ops) })
		}
	}
	stopNoise := make(chan struct{})
	var noiseWG sync.WaitGroup
	for i, in := range c.instances {
		noiseWG.Go(func() { noise(in, prob, notes, uint64(1000+i), stopNoise) })
	}
	wg.Wait()
	close(stopNoise)
	noiseWG.Wait()
	work := time.Since(start)
	phase := time.Now()

	e := expect(workers)
	live, gone, unsure := e.count()
	t.Logf("%d instances, %d workers × %d operations in %v: %d messages live at the end, %d expunged or moved away, %d unsure",
		n, len(workers), ops, work.Round(time.Millisecond), live, gone, unsure)

	// Every IDLE client must end up with every message left in INBOX. A
	// change reaches another process by inotify (same host) or by its
	// periodic disk check, so give them a while.
	want := make(map[string]bool)
	for id := range e.live["INBOX"] {
		want[id] = true
	}
	deadline := time.Now().Add(idleCatchUp)
	missed := make([][]string, len(watchers))
	for i, w := range watchers {
		missed[i] = w.waitFor(want, time.Until(deadline))
		sort.Strings(missed[i])
	}
	for _, w := range watchers {
		w.close()
	}
	t.Logf("IDLE clients caught up or gave up in %v", time.Since(phase).Round(time.Millisecond))
	phase = time.Now()

	// Fresh sessions, one per instance and folder.
	var final []*snapshot
	for _, f := range allFolders {
		var snaps []*snapshot
		for i, in := range c.instances {
			sn, err := takeSnapshot(in, f, prob)
			if err != nil {
				prob.add("final snapshot failed on instance "+in.name, "%s: %v", f, err)
				continue
			}
			snaps = append(snaps, sn)
			if f == "INBOX" {
				reportMissed(prob, watchers[i], missed[i], sn)
			}
		}
		if len(snaps) > 0 {
			checkSnapshots(prob, e, f, snaps)
			final = append(final, snaps...)
		}
	}
	var events [][]modSeqEvent
	for _, w := range workers {
		events = append(events, w.modSeqs)
	}
	checkModSeqs(t.Logf, prob, events, [][]*snapshot{final})

	t.Logf("final snapshots in %v", time.Since(phase).Round(time.Millisecond))
	phase = time.Now()
	c.stopAll(t)
	t.Logf("servers stopped in %v", time.Since(phase).Round(time.Millisecond))
	for _, f := range allFolders {
		checkDisk(prob, notes, e, c.maildir(0), f)
	}
	checkLogs(prob, notes, c.instances)

	notes.report(t.Logf, "note: ")
	prob.report(t.Errorf, "FAIL: ")
	if t.Failed() {
		t.Logf("server logs: %s", c.dir)
	}
}

// reportMissed reports the messages an IDLE client never fetched, with the
// UID they have now and the highest UID the client had seen: one below it
// is one "UID FETCH last+1:*" can never return.
func reportMissed(prob *problems, w *idleWatcher, missed []string, inbox *snapshot) {
	uids := make(map[string]imap.UID)
	for _, m := range inbox.msgs {
		uids[m.id] = m.uid
	}
	w.mu.Lock()
	last := w.last
	w.mu.Unlock()
	for _, id := range missed {
		prob.add(w.label+" missed a message", "%s (UID %d now; the client's highest UID: %d)", id, uids[id], last)
	}
}
