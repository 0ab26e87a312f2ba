package store_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// Real processes on one store: this test binary runs again as workers
// (TestWorkerProcess), each with its own Store, while the parent watches
// the folders as an IDLE session would.

const workerEnv = "LETTERBOX_STORE_WORKER"

// TestWorkerProcess is not a test: it is the body of a worker process.
func TestWorkerProcess(t *testing.T) {
	arg := os.Getenv(workerEnv)
	if arg == "" {
		t.Skip("only runs as a worker of TestProcesses")
	}
	parts := strings.Split(arg, "|")
	ops, _ := strconv.Atoi(parts[2])
	seed, _ := strconv.ParseInt(parts[3], 10, 64)
	s, err := store.Open(store.Options{PathTemplate: parts[0], PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.User("alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inbox, err := u.Open(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	archive, err := u.Open(ctx, "Archive")
	if err != nil {
		t.Fatal(err)
	}
	// This process watches too: its own view is checked like the parent's.
	mIn := watch(t, inbox, parts[1]+" INBOX")
	l := newLedger()
	w := &workload{t: t, u: u, inbox: inbox, archive: archive, l: l, tag: parts[1]}
	if err := w.run(ops, seed); err != nil {
		t.Fatal(err)
	}
	mIn.check(t, inbox)
	for id, n := range l.inbox {
		fmt.Printf("LEDGER inbox %s %d\n", id, n)
	}
	for id, n := range l.archive {
		fmt.Printf("LEDGER archive %s %d\n", id, n)
	}
}

func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "{user}", "Maildir")
	_, u := newUser(t, store.Options{PathTemplate: tmpl, PollInterval: 5 * time.Millisecond})
	inbox, archive := openBox(t, u, "INBOX"), openBox(t, u, "Archive")
	mIn, mAr := watch(t, inbox, "parent INBOX"), watch(t, archive, "parent Archive")

	const workers, ops = 3, 100
	var procs []*exec.Cmd
	var outs []*bytes.Buffer
	for i := 0; i < workers; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerProcess$", "-test.v")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|p%d|%d|%d", workerEnv, tmpl, i, ops, i+100))
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		outs = append(outs, out)
	}
	l := newLedger()
	for i, cmd := range procs {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("worker %d: %v\n%s", i, err, outs[i])
		}
		sc := bufio.NewScanner(outs[i])
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 4 || f[0] != "LEDGER" {
				continue
			}
			n, _ := strconv.Atoi(f[3])
			if f[1] == "inbox" {
				l.add(l.inbox, f[2], n)
			} else {
				l.add(l.archive, f[2], n)
			}
		}
	}
	mIn.check(t, inbox)
	mAr.check(t, archive)
	l.check(t, inbox, archive)
	// A process that starts now reads the same from the log.
	_, u2 := newUser(t, store.Options{PathTemplate: tmpl, NoWatch: true})
	fresh := openBox(t, u2, "INBOX")
	a, ha := snapshotOf(t, inbox)
	b, hb := snapshotOf(t, fresh)
	if a != b || ha != hb {
		t.Errorf("a new process sees INBOX differently (HIGHESTMODSEQ %d vs %d):\n%s\nvs\n%s", hb, ha, b, a)
	}
	checkUidlist(t, u.Root())
	checkUidlist(t, filepath.Join(u.Root(), ".Archive"))
}
