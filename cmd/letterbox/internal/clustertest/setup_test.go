package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	testUser     = "alice"
	testPassword = "clustertest-password"
)

// cluster is a shared mail tree and the instances serving it.
type cluster struct {
	dir       string   // local: configurations, users file, logs (and mail)
	mailRoots []string // per instance: the directory holding the mail tree
	instances []*instance
}

// envInt reads a positive integer from the environment.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// scaled is n multiplied by CLUSTERTEST_SCALE (a factor such as 0.3 or
// 5; default 1, CI-sized), and divided by 4 with -short; at least 1.
func scaled(n int) int {
	f, err := strconv.ParseFloat(os.Getenv("CLUSTERTEST_SCALE"), 64)
	if err != nil || f <= 0 {
		f = 1
	}
	if testing.Short() {
		f /= 4
	}
	return max(1, int(float64(n)*f))
}

// mailRoots returns one directory per instance under which the shared mail
// tree lives: CLUSTERTEST_ROOTS (the same tree seen through several mounts),
// or local for all.
func mailRoots(t *testing.T, n int, local string) []string {
	t.Helper()
	env := os.Getenv("CLUSTERTEST_ROOTS")
	if env == "" {
		roots := make([]string, n)
		for i := range roots {
			roots[i] = local
		}
		return roots
	}
	bases := strings.Split(env, ":")
	// A fresh subdirectory per test, made through the first mount and
	// used under the same name through the others.
	sub, err := os.MkdirTemp(bases[0], sanitize(t.Name())+"-")
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(sub)
	if os.Getenv("CLUSTERTEST_KEEP") != "1" {
		t.Cleanup(func() { os.RemoveAll(sub) })
	}
	roots := make([]string, n)
	for i := range roots {
		roots[i] = filepath.Join(bases[i%len(bases)], name)
		waitDir(t, roots[i])
	}
	return roots
}

func waitDir(t *testing.T, dir string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not visible after 30s", dir)
		}
	}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

// newCluster writes the configuration of n instances on one mail tree and
// creates the test user; it starts nothing.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	bin := letterboxBinary(t)
	dir := t.TempDir()
	if os.Getenv("CLUSTERTEST_KEEP") == "1" {
		// t.TempDir is removed even on failure; keep a copy of the logs.
		var err error
		if dir, err = os.MkdirTemp("", "clustertest-"+sanitize(t.Name())+"-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if !t.Failed() {
				os.RemoveAll(dir)
			} else {
				t.Logf("kept %s", dir)
			}
		})
	}
	c := &cluster{dir: dir, mailRoots: mailRoots(t, n, dir)}
	for i := range n {
		name := string(rune('A' + i))
		in := &instance{
			name:    name,
			bin:     bin,
			cfgPath: filepath.Join(dir, "instance-"+name+".toml"),
			logPath: filepath.Join(dir, "instance-"+name+".log"),
		}
		if err := os.WriteFile(in.cfgPath, []byte(c.config(name, c.mailRoots[i])), 0o600); err != nil {
			t.Fatal(err)
		}
		c.instances = append(c.instances, in)
	}
	// "user add" writes the users file and makes the Maildir.
	cmd := exec.Command(bin, "user", "add", testUser, "--password-stdin", "--cost=4", "--config", c.instances[0].cfgPath)
	cmd.Env = childEnv(dir)
	cmd.Stdin = strings.NewReader(testPassword + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("letterbox user add: %v\n%s", err, out)
	}
	return c
}

// config is the TOML configuration of one instance: loopback only, IMAP
// without TLS (auth.allow_insecure), LMTP on TCP, its own data directory
// (self-signed certificate, control socket), and the shared mail tree.
func (c *cluster) config(name, mailRoot string) string {
	q := strconv.Quote
	return fmt.Sprintf(`# clustertest instance %[1]s
data_dir = %[2]s
hostname = %[3]s

[server]
drain_timeout = "5s"

[log]
level = "info"
format = "json"

[auth]
users_file = %[4]s
allow_insecure = true
fail_delay = "0s"
throttle_failures = 0

[mail]
path = %[5]s

[pop3]
listen = []
listen_tls = []

[imap]
listen = ["127.0.0.1:0"]
listen_tls = []
max_connections_per_ip = 200
max_connections_per_user = 100

[lmtp]
listen = ["127.0.0.1:0"]

[control]
socket = "control"
`, name, q(filepath.Join(c.dir, "data-"+name)), q("clustertest-"+strings.ToLower(name)),
		q(filepath.Join(c.dir, "users")), q(filepath.Join(mailRoot, "mail", "{user}", "Maildir")))
}

// maildir is the test user's Maildir root as instance i sees it.
func (c *cluster) maildir(i int) string {
	return filepath.Join(c.mailRoots[i], "mail", testUser, "Maildir")
}

func (c *cluster) startAll(t *testing.T) {
	t.Helper()
	for _, in := range c.instances {
		in.start(t)
	}
}

// stopAll stops every instance gracefully; a failed stop is an error.
func (c *cluster) stopAll(t *testing.T) {
	t.Helper()
	for _, in := range c.instances {
		if err := in.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
}
