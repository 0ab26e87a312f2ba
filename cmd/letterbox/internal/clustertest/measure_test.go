package clustertest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestMeasure logs figures for the issue 10 note, asserting nothing about
// them: how long a change made through instance A takes to show on
// instance B (a fresh SELECT, an IDLE client), and APPEND throughput through
// one and through both instances. Run it on local disk and on GlusterFS
// (deploy/glusterfs/test.sh) to compare:
//
//	CLUSTERTEST_MEASURE=1 go test -run TestMeasure -v ./cmd/letterbox/internal/clustertest
func TestMeasure(t *testing.T) {
	if os.Getenv("CLUSTERTEST_MEASURE") != "1" {
		t.Skip("set CLUSTERTEST_MEASURE=1 to measure")
	}
	samples := envInt("CLUSTERTEST_SAMPLES", 10)
	storage := os.Getenv("CLUSTERTEST_ROOTS")
	if storage == "" {
		storage = "local disk (one temporary directory)"
	}
	c := newCluster(t, 2)
	c.startAll(t)
	a, b := c.instances[0], c.instances[1]
	prob, notes := newProblems(), newProblems()
	t.Logf("storage: %s; %d samples per figure", storage, samples)

	visibility(t, a, b, samples, prob, notes)
	for _, clients := range []int{1, 4} {
		throughput(t, []*instance{a}, clients, samples*20, prob)
	}
	throughput(t, []*instance{a, b}, 2, samples*20, prob)

	c.stopAll(t)
	notes.report(t.Logf, "note: ")
	prob.report(t.Errorf, "FAIL: ")
}

// visibility measures how long an APPEND and a flag change through a take
// to show through b.
func visibility(t *testing.T, a, b *instance, samples int, prob, notes *problems) {
	type seenAt struct {
		uid imap.UID
		at  time.Time
	}
	var mu sync.Mutex
	seen := make(map[string]seenAt)
	w := newIdleWatcher(b, prob, notes)
	w.onNew = func(id string, uid imap.UID, at time.Time) {
		mu.Lock()
		seen[id] = seenAt{uid, at}
		mu.Unlock()
	}
	w.start()
	defer w.close()

	sa, err := dialIMAP(a, prob, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.logout()
	if _, err := sa.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	sb, err := dialIMAP(b, prob, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.logout()

	const bound = 60 * time.Second
	rng := rand.New(rand.NewPCG(1, 2))
	pause := func() { time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond) }
	appendOnA := func(id string) imap.UID {
		uid, err := appendMessage(sa.Client, "INBOX", message(id, 0), nil)
		if err != nil {
			t.Fatalf("APPEND on %s: %v", a.name, err)
		}
		return uid
	}
	var appendSelect, appendIdle, flagSelect []time.Duration

	// The IDLE client alone: nothing else on b makes its store look at
	// the disk meanwhile (a SELECT there would wake the IDLE client too).
	for i := range samples {
		pause()
		id := fmt.Sprintf("vis-idle-%d@clustertest.invalid", i)
		appendOnA(id)
		t0 := time.Now()
		for {
			mu.Lock()
			s, ok := seen[id]
			mu.Unlock()
			if ok {
				appendIdle = append(appendIdle, max(0, s.at.Sub(t0)))
				break
			}
			if time.Since(t0) > bound {
				prob.add("APPEND on A not seen by the IDLE client on B within "+bound.String(), "%s", id)
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}

	// A fresh SELECT on b, again and again, until it shows the change.
	for i := range samples {
		pause()
		id := fmt.Sprintf("vis-select-%d@clustertest.invalid", i)
		uid := appendOnA(id)
		t0 := time.Now()
		for {
			sel, err := sb.Select("INBOX", nil).Wait()
			if err != nil {
				t.Fatalf("SELECT on %s: %v", b.name, err)
			}
			if sel.UIDNext > uid {
				appendSelect = append(appendSelect, time.Since(t0))
				break
			}
			if time.Since(t0) > bound {
				prob.add("APPEND on A not shown by SELECT on B within "+bound.String(), "%s", id)
				break
			}
			time.Sleep(2 * time.Millisecond)
		}

		pause()
		if err := sa.Store(uidSet(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
			t.Fatalf("STORE on %s: %v", a.name, err)
		}
		t0 = time.Now()
		for {
			if _, err := sb.Select("INBOX", nil).Wait(); err != nil {
				t.Fatalf("SELECT on %s: %v", b.name, err)
			}
			msgs, err := fetchIDs(sb.Client, uidSet(uid), false)
			if err != nil {
				t.Fatalf("FETCH on %s: %v", b.name, err)
			}
			if len(msgs) == 1 && msgs[0].flags == `\flagged` {
				flagSelect = append(flagSelect, time.Since(t0))
				break
			}
			if time.Since(t0) > bound {
				prob.add("flag change on A not shown by SELECT on B within "+bound.String(), "%s", id)
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	t.Logf("APPEND on A until a fresh SELECT on B shows it: %s", durations(appendSelect))
	t.Logf("APPEND on A until the IDLE client on B has fetched it: %s", durations(appendIdle))
	t.Logf("STORE +FLAGS on A until a fresh SELECT on B shows it: %s", durations(flagSelect))
}

// throughput APPENDs n messages through clients sessions on each of the
// instances and logs messages per second.
func throughput(t *testing.T, ins []*instance, clients, n int, prob *problems) {
	var sessions []*session
	for _, in := range ins {
		for range clients {
			s, err := dialIMAP(in, prob, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.logout()
			sessions = append(sessions, s)
		}
	}
	per := max(1, n/len(sessions))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	start := time.Now()
	for i, s := range sessions {
		wg.Go(func() {
			for j := range per {
				msg := message(fmt.Sprintf("tp-%d-%d-%d@clustertest.invalid", len(sessions), i, j), 20)
				t0 := time.Now()
				if _, err := appendMessage(s.Client, "INBOX", msg, nil); err != nil {
					prob.add("APPEND failed while measuring throughput", "%v", err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	names := ""
	for _, in := range ins {
		names += in.name
	}
	t.Logf("APPEND throughput, %d client(s) on each of %s: %d messages in %v = %.0f/s; latency %s",
		clients, names, len(lat), el.Round(time.Millisecond), float64(len(lat))/el.Seconds(), durations(lat))
}

// durations summarizes measured times.
func durations(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	r := func(x time.Duration) time.Duration {
		if x > time.Second {
			return x.Round(10 * time.Millisecond)
		}
		return x.Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("n=%d min %v median %v p90 %v max %v", len(s), r(s[0]), r(s[len(s)/2]), r(s[len(s)*9/10]), r(s[len(s)-1]))
}
