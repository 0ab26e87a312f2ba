package clustertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The binary is built once per test process into a directory TestMain
// removes.
var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// letterboxBinary returns the path of a letterbox binary built from this
// module.
func letterboxBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CLUSTERTEST_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go tool not in PATH: %w", err)
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "letterbox-clustertest-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "letterbox")
		args := []string{"build", "-o", binPath}
		if os.Getenv("CLUSTERTEST_RACE") == "1" {
			args = append(args, "-race")
		}
		args = append(args, "github.com/letterbox-mail/letterbox/cmd/letterbox")
		if out, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// childEnv is the whole environment of the processes the tests start: the
// test's own LETTERBOX_* variables would be read as configuration.
func childEnv(home string) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
}

// instance is one "letterbox serve" process with its configuration. The
// process may be stopped and started again on the same configuration (the
// kill -9 test does).
type instance struct {
	name    string // "A", "B", ...
	bin     string
	cfgPath string
	logPath string // JSON log of every start, appended

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	imapAddr string
	lmtpAddr string
}

// logLine is the part of a JSON log line the tests read.
type logLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Proto string `json:"proto"`
	Addr  string `json:"addr"`
	Err   string `json:"err"`
	Panic string `json:"panic"`
}

// start runs the server and waits until it logs "letterbox ready", reading
// the bound IMAP and LMTP addresses on the way.
func (in *instance) start(t testing.TB) {
	t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd != nil {
		t.Fatalf("instance %s already running", in.name)
	}
	logf, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(in.bin, "serve", "--config", in.cfgPath)
	cmd.Env = childEnv(filepath.Dir(in.cfgPath))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { in.kill(pid) })
	exited := make(chan struct{})
	ready := make(chan [2]string, 1)
	go func() {
		defer close(exited)
		defer logf.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		var imapAddr, lmtpAddr string
		signalled := false
		for sc.Scan() {
			line := sc.Bytes()
			logf.Write(append(line, '\n'))
			if signalled {
				continue
			}
			var l logLine
			if json.Unmarshal(line, &l) != nil {
				continue
			}
			switch {
			case l.Msg == "listening" && l.Proto == "imap":
				imapAddr = l.Addr
			case l.Msg == "lmtp listening":
				lmtpAddr = l.Addr
			case l.Msg == "letterbox ready":
				ready <- [2]string{imapAddr, lmtpAddr}
				signalled = true
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
	}()
	select {
	case a := <-ready:
		in.cmd, in.exited, in.imapAddr, in.lmtpAddr = cmd, exited, a[0], a[1]
		if in.imapAddr == "" || in.lmtpAddr == "" {
			t.Fatalf("instance %s: no IMAP or LMTP address in its log %s", in.name, in.logPath)
		}
	case <-exited:
		t.Fatalf("instance %s ended before it was ready:\n%s", in.name, tail(in.logPath, 20))
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("instance %s not ready after 60s:\n%s", in.name, tail(in.logPath, 20))
	}
}

// stop ends the server with SIGTERM (SIGKILL if it takes too long) and
// waits for it.
func (in *instance) stop() error {
	return in.signal(syscall.SIGTERM, 20*time.Second)
}

// crash ends the server with SIGKILL and waits for it.
func (in *instance) crash() error {
	return in.signal(syscall.SIGKILL, 20*time.Second)
}

func (in *instance) signal(sig syscall.Signal, wait time.Duration) error {
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-exited:
	case <-time.After(wait):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("instance %s: still running %v after %v; killed", in.name, sig, wait)
	}
	if sig == syscall.SIGTERM && cmd.ProcessState != nil && !cmd.ProcessState.Success() {
		return fmt.Errorf("instance %s: %v", in.name, cmd.ProcessState)
	}
	return nil
}

// kill is the cleanup of one started process: it ends it by PID if it is
// still the running one.
func (in *instance) kill(pid int) {
	in.mu.Lock()
	cmd := in.cmd
	in.mu.Unlock()
	if cmd != nil && cmd.Process.Pid == pid {
		in.crash()
	}
}

func (in *instance) addrs() (imapAddr, lmtpAddr string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.imapAddr, in.lmtpAddr
}

// deliver runs "letterbox deliver" with this instance's configuration.
func (in *instance) deliver(user string, msg []byte) error {
	cmd := exec.Command(in.bin, "deliver", "--config", in.cfgPath, user)
	cmd.Env = childEnv(filepath.Dir(in.cfgPath))
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("letterbox deliver: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// logSummary counts the warnings and errors a server logged, by message,
// and the lines that are not JSON log lines (panics, race reports).
type logSummary struct {
	byMsg  map[string]int // "ERROR store: ..." → count
	raw    int            // lines that are not JSON
	rawEx  []string
	panics int // unrecovered panics
}

func summarizeLog(path string) (logSummary, error) {
	s := logSummary{byMsg: make(map[string]int)}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		var l logLine
		if json.Unmarshal([]byte(line), &l) != nil {
			if strings.HasPrefix(line, "panic:") {
				s.panics++ // not recovered: the process died
			}
			s.raw++
			if len(s.rawEx) < 5 {
				s.rawEx = append(s.rawEx, line)
			}
			continue
		}
		if l.Level == "WARN" || l.Level == "ERROR" {
			key := l.Level + " " + l.Msg
			if l.Err != "" {
				key += ": " + trimErr(l.Err)
			}
			if l.Panic != "" {
				key += ": panic: " + trimErr(l.Panic)
			}
			s.byMsg[key]++
		}
	}
	return s, sc.Err()
}

// trimErr keeps the part of an error text that names the problem, without
// file names and numbers, so that equal problems count together.
func trimErr(e string) string {
	e = paths.ReplaceAllString(e, "PATH")
	e = digits.ReplaceAllString(e, "N")
	if len(e) > 120 {
		e = e[:120]
	}
	return e
}

var (
	paths  = regexp.MustCompile(`/[^ :"]+`)
	digits = regexp.MustCompile(`[0-9]+`)
)

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
