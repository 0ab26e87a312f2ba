package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinary runs the built command as an admin and an MTA would: real
// process, real exit codes, real signals.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not in PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "letterbox")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := t.TempDir()
	command := func(stdin string, args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Dir = work
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work}
		cmd.Stdin = strings.NewReader(stdin)
		return cmd
	}
	exitCode := func(stdin string, args ...string) (int, string) {
		var out bytes.Buffer
		cmd := command(stdin, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	}

	t.Run("serve until SIGTERM", func(t *testing.T) {
		cmd := command("", append([]string{"serve"}, loopbackFlags...)...)
		var stdout syncBuffer
		cmd.Stdout = &stdout
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill() // only if the test fails before Wait
		ready := make(chan string, 1)
		go func() {
			var log strings.Builder
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				log.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), "letterbox ready") {
					ready <- log.String()
				}
			}
			ready <- log.String()
		}()
		var log string
		select {
		case log = <-ready:
			if !strings.Contains(log, "letterbox ready") {
				t.Fatalf("serve ended before ready:\n%s", log)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("serve not ready after 60s")
		}
		// stdout is copied from its own pipe: give it a moment.
		var m []string
		for deadline := time.Now().Add(10 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			m = passwordRE.FindStringSubmatch(stdout.String())
		}
		if m == nil || !strings.Contains(stdout.String(), "user:     demo") {
			t.Fatalf("no demo credentials on stdout:\n%s", stdout.String())
		}

		// A message delivered as Postfix would, fetched as a person
		// would: curl over POP3 with implicit TLS.
		if code, out := exitCode(testMessage, "deliver", "demo"); code != exitOK {
			t.Fatalf("deliver: exit %d: %s", code, out)
		}
		var pop3s string
		for _, l := range listeningRE.FindAllStringSubmatch(log, -1) {
			if l[1] == "pop3" && l[3] == "implicit" {
				pop3s = l[2]
			}
		}
		if curl, err := exec.LookPath("curl"); err != nil {
			t.Log("curl not installed; skipping the curl check (.ci/run installs it)")
		} else if pop3s == "" {
			t.Errorf("no pop3 implicit-TLS listener in the log:\n%s", log)
		} else {
			out, err := exec.Command(curl, "-sS", "-k", "--max-time", "30", "pop3s://"+pop3s+"/1", "--user", "demo:"+m[1]).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Subject: hello") {
				t.Errorf("curl pop3s: %v\n%s", err, out)
			}
		}

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve after SIGTERM: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop on SIGTERM")
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		if code, out := exitCode("pw\n", "user", "add", "ivan", "--password-stdin", "--cost=4"); code != exitOK {
			t.Fatalf("user add: %d %s", code, out)
		}
		for _, tt := range []struct {
			args []string
			code int
		}{
			{[]string{"deliver", "ivan"}, exitOK},
			{[]string{"deliver", "judy"}, exitNoUser},
			{[]string{"deliver", "ivan", "--hostname=a/b"}, exitConfig},
			{[]string{"deliver"}, exitUsage},
			{[]string{"nonsense"}, exitUsage},
		} {
			if code, out := exitCode(testMessage, tt.args...); code != tt.code {
				t.Errorf("letterbox %s: exit %d, want %d\n%s", strings.Join(tt.args, " "), code, tt.code, out)
			}
		}
	})
}
