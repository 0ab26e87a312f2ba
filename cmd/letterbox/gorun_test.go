package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestIsGoRun(t *testing.T) {
	for cmdline, want := range map[string]bool{
		"go\x00run\x00./cmd/letterbox\x00serve\x00":     true,
		"/usr/local/go/bin/go\x00run\x00.\x00serve\x00": true,
		"go\x00build\x00./cmd/letterbox\x00":            false,
		"/bin/bash\x00-c\x00go run .\x00":               false,
		"/usr/bin/letterbox\x00serve\x00":               false,
		"":                                              false,
	} {
		if got := isGoRun(cmdline); got != want {
			t.Errorf("%q: %v, want %v", cmdline, got, want)
		}
	}
}

// TestGoRunSIGTERM: SIGTERM to "go run ./cmd/letterbox serve", as a
// terminal multiplexer or a CI job sends it, stops the server, which go
// run does not pass the signal on to.
func TestGoRunSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles with go run")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not in PATH: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(goTool, append([]string{"run", ".", "serve", "--data_dir=" + filepath.Join(dir, "data"), "--control.socket="}, loopbackFlags...)...)
	// A pipe of our own: the server writes to it after go run is gone,
	// and exec's StderrPipe would be closed by Wait.
	stderr, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	logc := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logc <- sc.Text()
		}
		close(logc)
	}()
	var seen []string // for the failure message
	waitFor := func(what string, d time.Duration) bool {
		timeout := time.After(d)
		for {
			select {
			case line, ok := <-logc:
				if !ok {
					return false
				}
				seen = append(seen, line)
				if strings.Contains(line, what) {
					return true
				}
			case <-timeout:
				return false
			}
		}
	}
	if !waitFor("letterbox ready", 3*time.Minute) {
		cmd.Process.Kill()
		t.Fatalf("go run: no server ready; it said:\n%s", strings.Join(seen, "\n"))
	}
	// The server is go run's child; note it, to clean up if the test
	// fails.
	var child int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, pid := range strings.Fields(string(b)) {
			child, _ = strconv.Atoi(pid)
		}
	}
	t.Cleanup(func() {
		if child > 0 && syscall.Kill(child, 0) == nil {
			syscall.Kill(child, syscall.SIGKILL)
		}
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// The server stops: gracefully, or at once if go run passed the
	// signal on as well (this Go's go run may), making the kernel's the
	// second one. Either way its stderr ends and the process is gone.
	waitFor("\x00never", time.Minute)
	text := strings.Join(seen, "\n")
	if !strings.Contains(text, "msg=stopped") && !strings.Contains(text, "second signal") {
		t.Errorf("the server went on after SIGTERM to go run (pid %d); it said:\n%s", child, text)
	}
	if child > 0 {
		for i := 0; i < 100 && running(child); i++ {
			time.Sleep(10 * time.Millisecond) // exiting: its stderr closed first
		}
		if running(child) {
			t.Errorf("server pid %d still runs after SIGTERM to go run", child)
		}
	}
}

// running reports whether a process exists and is not a zombie waiting to
// be reaped by whoever inherited it.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) state ...": the state follows the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
