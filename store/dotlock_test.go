package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func writeLock(t *testing.T, path string, pid int, host string, age time.Duration) {
	t.Helper()
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d:%s\n", pid, host)), 0o600); err != nil {
		t.Fatal(err)
	}
	if age > 0 {
		old := time.Now().Add(-age)
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDotlockDeadHolderBrokenAtOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dovecot-uidlist.lock")
	writeLock(t, p, deadPID(t), thisHost(), 0)
	// The timeout is far below the 120 s age rule: only PID liveness can
	// let this through.
	l, err := acquireDotlock(context.Background(), p, 2*time.Second, 0o600)
	if err != nil {
		t.Fatalf("lock of a dead process not broken: %v", err)
	}
	data, _ := os.ReadFile(p)
	if string(data) != fmt.Sprintf("%d:%s\n", os.Getpid(), thisHost()) {
		t.Errorf("lock says %q", data)
	}
	l.release()
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("lock still there after release: %v", err)
	}
}

func TestDotlockLiveHolderRespected(t *testing.T) {
	dir := t.TempDir()
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	for name, lock := range map[string]struct {
		pid  int
		host string
		age  time.Duration
	}{
		"live process here":       {sleeper.Process.Pid, thisHost(), 0},
		"this very process":       {os.Getpid(), thisHost(), 0},
		"a process on other host": {deadPID(t), "elsewhere.example", 0},
	} {
		p := filepath.Join(dir, name+".lock")
		writeLock(t, p, lock.pid, lock.host, lock.age)
		if l, err := acquireDotlock(context.Background(), p, 200*time.Millisecond, 0o600); err == nil {
			l.release()
			t.Errorf("%s: lock taken over", name)
		}
	}
	// Elsewhere and untouched for longer than the stale age: broken.
	p := filepath.Join(dir, "old.lock")
	writeLock(t, p, 12345, "elsewhere.example", dotlockStale+time.Minute)
	l, err := acquireDotlock(context.Background(), p, 2*time.Second, 0o600)
	if err != nil {
		t.Fatalf("stale lock of another host not broken: %v", err)
	}
	l.release()
}

// Many waiters see the same stale lock at once; only one may hold the lock
// at any moment, round after round.
func TestDotlockBreakersExclude(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dovecot-uidlist.lock")
	dead := deadPID(t)
	var inside, overlaps, holds atomic.Int32
	for round := 0; round < 20; round++ {
		writeLock(t, p, dead, thisHost(), 0)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := acquireDotlock(context.Background(), p, 10*time.Second, 0o600)
				if err != nil {
					t.Error(err)
					return
				}
				// Counted, not kept as a maximum: a check-then-store
				// could lose an overlap to a later 1.
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				holds.Add(1)
				time.Sleep(200 * time.Microsecond)
				inside.Add(-1)
				l.release()
			}()
		}
		wg.Wait()
	}
	if overlaps.Load() != 0 || holds.Load() != 160 {
		t.Errorf("%d holds overlapped another, %d holds of 160", overlaps.Load(), holds.Load())
	}
	if _, err := os.Stat(p + ".break"); !os.IsNotExist(err) {
		t.Errorf("break lock left behind: %v", err)
	}
}

// A holder whose lock was broken (it looked stale) does not remove the new
// holder's lock when it finally releases its own.
func TestDotlockReleaseKeepsOthersLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	l, err := acquireDotlock(context.Background(), p, time.Second, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	writeLock(t, p, os.Getpid(), "someone-else", 0)
	l.release()
	if _, err := os.Stat(p); err != nil {
		t.Errorf("release removed a lock that was not ours: %v", err)
	}
}

const lockHolderEnv = "LETTERBOX_TEST_LOCK_HOLDER"

// TestLockHolderProcess is not a test: it takes a lock and waits to be
// killed, for TestDotlockAfterKill.
func TestLockHolderProcess(t *testing.T) {
	p := os.Getenv(lockHolderEnv)
	if p == "" {
		t.Skip("only runs as a helper process")
	}
	if _, err := acquireDotlock(context.Background(), p, time.Minute, 0o600); err != nil {
		t.Fatal(err)
	}
	fmt.Println("locked")
	time.Sleep(time.Hour)
}

// kill -9 of a process holding the lock: the next taker gets it at once.
func TestDotlockAfterKill(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dovecot-uidlist.lock")
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolderProcess$")
		cmd.Env = append(os.Environ(), lockHolderEnv+"="+p)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if line != "locked\n" {
			cmd.Process.Kill()
			t.Fatalf("helper said %q", line)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		data, _ := os.ReadFile(p)
		if string(data) != strconv.Itoa(cmd.Process.Pid)+":"+thisHost()+"\n" {
			t.Fatalf("lock left by the killed process says %q", data)
		}
		l, err := acquireDotlock(context.Background(), p, 2*time.Second, 0o600)
		if err != nil {
			t.Fatalf("round %d: lock of a killed process not taken: %v", round, err)
		}
		l.release()
	}
}
