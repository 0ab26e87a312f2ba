package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/auth"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
)

// deployDir is the repository's deploy/ directory.
const deployDir = "../../deploy"

// unitFile reads a systemd unit file into section → key → values.
func unitFile(t *testing.T, name string) map[string]map[string][]string {
	t.Helper()
	out := make(map[string]map[string][]string)
	var section string
	sc := bufio.NewScanner(strings.NewReader(readFile(t, filepath.Join(deployDir, name))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			out[section] = make(map[string][]string)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: bad line %q", name, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// The service and socket promise what the server and the example
// configuration do.
func TestUnitFiles(t *testing.T) {
	svc := unitFile(t, "letterbox.service")["Service"]
	one := func(key string) string {
		t.Helper()
		if len(svc[key]) != 1 {
			t.Errorf("letterbox.service: %s=%v, want one value", key, svc[key])
			return ""
		}
		return svc[key][0]
	}
	for key, want := range map[string]string{
		"Type":                     "notify",
		"ExecStart":                "/usr/bin/letterbox serve --config /etc/letterbox/letterbox.toml",
		"ExecReload":               "/bin/kill -HUP $MAINPID",
		"RestartPreventExitStatus": strconv.Itoa(exitConfig),
		"User":                     "letterbox",
		"CapabilityBoundingSet":    "CAP_NET_BIND_SERVICE",
		"AmbientCapabilities":      "CAP_NET_BIND_SERVICE",
		"ProtectSystem":            "strict",
		"StateDirectory":           "letterbox",
		"RuntimeDirectory":         "letterbox",
		"NoNewPrivileges":          "yes",
		"UMask":                    "0077",
		"RestrictAddressFamilies":  "AF_INET AF_INET6 AF_UNIX",
	} {
		if got := one(key); got != want {
			t.Errorf("letterbox.service: %s=%q, want %q", key, got, want)
		}
	}
	// A graceful stop must be allowed to take the whole drain timeout.
	example, err := filepath.Abs(filepath.Join(deployDir, "letterbox.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Options{Environ: []string{config.EnvConfig + "=" + example}, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	stop, err := time.ParseDuration(one("TimeoutStopSec"))
	if err != nil || stop < cfg.Server.DrainTimeout+5*time.Second {
		t.Errorf("TimeoutStopSec=%s, want at least drain_timeout (%v) + 5s", one("TimeoutStopSec"), cfg.Server.DrainTimeout)
	}
	if n, err := strconv.Atoi(one("LimitNOFILE")); err != nil || n < cfg.IMAP.MaxConnections+cfg.POP3.MaxConnections+1000 {
		t.Errorf("LimitNOFILE=%s is short of the connection limits", one("LimitNOFILE"))
	}
	// The paths the example configuration writes are writable in the sandbox.
	if cfg.DataDir != "/var/lib/"+one("StateDirectory") {
		t.Errorf("data_dir %s is not the StateDirectory", cfg.DataDir)
	}
	for _, p := range []string{cfg.LMTP.Socket, cfg.Control.Socket} {
		if p != "" && filepath.Dir(p) != "/run/"+one("RuntimeDirectory") {
			t.Errorf("socket %s is outside the RuntimeDirectory", p)
		}
	}

	// Every port of letterbox.socket is in a listen list of the example
	// configuration: that is how the server tells its sockets apart.
	sock := unitFile(t, "letterbox.socket")
	var ports []string
	for _, a := range slices.Concat(cfg.POP3.Listen, cfg.POP3.ListenTLS, cfg.IMAP.Listen, cfg.IMAP.ListenTLS) {
		_, p, _ := net.SplitHostPort(a)
		ports = append(ports, p)
	}
	streams := sock["Socket"]["ListenStream"]
	if len(streams) != 4 {
		t.Errorf("letterbox.socket ListenStream=%v, want 110, 143, 993, 995", streams)
	}
	for _, s := range streams {
		if !slices.Contains(ports, s) {
			t.Errorf("letterbox.socket port %s is in no listen list of letterbox.toml (%v)", s, ports)
		}
	}
	if got := sock["Socket"]["Service"]; !slices.Equal(got, []string{"letterbox.service"}) {
		t.Errorf("letterbox.socket Service=%v", got)
	}

	// sysusers creates the unit's user; tmpfiles makes the directories.
	if !regexp.MustCompile(`(?m)^u\s+letterbox\s`).MatchString(readFile(t, filepath.Join(deployDir, "letterbox.sysusers.conf"))) {
		t.Error("sysusers.d does not create user letterbox")
	}
	tmpfiles := readFile(t, filepath.Join(deployDir, "letterbox.tmpfiles.conf"))
	for _, p := range []string{filepath.Dir(cfg.Auth.UsersFile), filepath.Dir(cfg.TLS.CertFile), cfg.Auth.UsersFile, cfg.DataDir} {
		if !regexp.MustCompile(`(?m)^[dfz]\s+` + regexp.QuoteMeta(p) + `\s`).MatchString(tmpfiles) {
			t.Errorf("tmpfiles.d does not create %s", p)
		}
	}
}

// systemd-analyze accepts the units, and rates the service's sandbox.
func TestSystemdAnalyze(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (.ci/run installs systemd)")
	}
	dir := t.TempDir()
	// verify wants ExecStart's program to exist: a stand-in.
	fake := filepath.Join(dir, "letterbox")
	writeFile(t, fake, []byte("#!/bin/sh\nexit 0\n"))
	if err := os.Chmod(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"letterbox.service", "letterbox.socket"} {
		unit := strings.ReplaceAll(readFile(t, filepath.Join(deployDir, name)), "/usr/bin/letterbox", fake)
		writeFile(t, filepath.Join(dir, name), []byte(unit))
	}
	cmd := exec.Command(sa, "verify", "letterbox.service", "letterbox.socket")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	// verify also reports on units it pulls in from the host; only ours count.
	var ours []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "letterbox") {
			ours = append(ours, l)
		}
	}
	if err != nil || len(ours) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	cmd = exec.Command(sa, "security", "--offline=true", "--no-pager", "./letterbox.service")
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	if strings.Contains(string(out), "unrecognized option") {
		t.Skipf("this systemd-analyze has no --offline: %s", out)
	}
	m := regexp.MustCompile(`Overall exposure level for letterbox.service: ([0-9.]+) (\w+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	t.Logf("systemd-analyze security: %s %s", m[1], m[2])
	if score, _ := strconv.ParseFloat(m[1], 64); score > 2.0 || (m[2] != "OK" && m[2] != "SAFE") {
		t.Errorf("exposure %s %s, want OK (at most 2.0)", m[1], m[2])
	}
}

// failRegexes reads the failregex patterns of the fail2ban filter.
func failRegexes(t *testing.T) []string {
	t.Helper()
	var pats []string
	in := false
	for _, l := range strings.Split(readFile(t, filepath.Join(deployDir, "fail2ban/filter.d/letterbox.conf")), "\n") {
		switch {
		case strings.HasPrefix(l, "failregex"):
			_, v, _ := strings.Cut(l, "=")
			pats, in = append(pats, strings.TrimSpace(v)), true
		case in && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && strings.TrimSpace(l) != "":
			pats = append(pats, strings.TrimSpace(l))
		default:
			in = false
		}
	}
	if len(pats) == 0 {
		t.Fatal("no failregex in the filter")
	}
	return pats
}

// authFailures runs serve with log.format format, fails some POP3 logins,
// and returns the log lines about them.
func authFailures(t *testing.T, format string) []string {
	t.Helper()
	e := newTestEnv(t)
	cfgFile := filepath.Join(e.dir, "letterbox.toml")
	serveConfig{}.write(t, cfgFile)
	e.must("secret\n", "user", "add", "ivan", "--password-stdin", "--cost=4", "--config", cfgFile)
	sr := e.startServe(nil, "--config", cfgFile, "--log.format="+format, "--imap.listen=", "--imap.listen_tls=", "--pop3.listen_tls=")
	var addr string
	for _, l := range strings.Split(sr.stderr.String(), "\n") {
		if m := listeningRE.FindStringSubmatch(l); m != nil {
			addr = m[2]
		}
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "listening" {
			addr = rec.Addr
		}
	}
	// POP3 user names have no spaces; crafted ones are tried below.
	for _, user := range []string{"ivan", "nobody", `x","ip":"6.6.6.6","user":"y`, `x"ip=6.6.6.6`} {
		c := newLineClient(t, dial(t, addr, false))
		c.expect("+OK")
		c.cmd("USER "+user, "")
		c.cmd("PASS wrong", "-ERR")
		c.c.Close()
	}
	sr.stop(t)
	var lines []string
	for _, l := range strings.Split(sr.stderr.String(), "\n") {
		if strings.Contains(l, "authentication failed") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 4 {
		t.Fatalf("want 4 failure lines, got:\n%s", sr.stderr.String())
	}

	// User names with spaces and quotes (IMAP LOGIN takes them), through
	// the same logger and authenticator as serve's.
	var buf syncBuffer
	log, _ := newLiveLogger(configLog("info", format), &buf)
	a, err := auth.New(auth.Options{UsersFile: filepath.Join(e.dir, "data", "users"), Logger: log, FailDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{`x ip=6.6.6.6 user=y`, `x" ip=6.6.6.6 user="y`, `x\" ip=6.6.6.6 user=\"y`, `x\","ip":"6.6.6.6","user":"y`} {
		a.Authenticate(context.Background(), user, "pw", netip.MustParseAddr("127.0.0.1"))
	}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(l, "authentication failed") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 8 {
		t.Fatalf("want 8 failure lines, got:\n%s", strings.Join(lines, "\n"))
	}
	return lines
}

// The fail2ban filter finds the client address in real failure lines, in
// both log formats, and no user name can make it find another.
func TestFail2banFilter(t *testing.T) {
	var pats []*regexp.Regexp
	for _, p := range failRegexes(t) {
		// fail2ban's <ADDR> is an IPv4 or IPv6 address.
		pats = append(pats, regexp.MustCompile(strings.ReplaceAll(p, "<ADDR>", `(?P<addr>[0-9A-Fa-f:.]+)`)))
	}
	var all []string
	for _, format := range []string{"text", "json"} {
		lines := authFailures(t, format)
		all = append(all, lines...)
		for _, l := range lines {
			var found []string
			for _, re := range pats {
				if m := re.FindStringSubmatch(l); m != nil {
					found = append(found, m[re.SubexpIndex("addr")])
				}
			}
			if !slices.Equal(found, []string{"127.0.0.1"}) {
				t.Errorf("%s line: filter found %v, want 127.0.0.1 once:\n%s", format, found, l)
			}
		}
	}

	// And fail2ban itself, when installed, agrees.
	f2b, err := exec.LookPath("fail2ban-regex")
	if err != nil {
		t.Log("fail2ban-regex not installed; checked the patterns with Go's regexp only")
		return
	}
	logFile := filepath.Join(t.TempDir(), "letterbox.log")
	writeFile(t, logFile, []byte(strings.Join(all, "\n")+"\n"))
	filter, err := filepath.Abs(filepath.Join(deployDir, "fail2ban/filter.d/letterbox.conf"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(f2b, "-o", "ip", logFile, filter).CombinedOutput()
	want := strings.Repeat("127.0.0.1\n", len(all))
	if err != nil || string(out) != want {
		t.Errorf("fail2ban-regex: %v\n%s\nwant %d times 127.0.0.1", err, out, len(all))
	}
}

// TestDebPackage builds the .deb with deploy/package.sh (nfpm from the Go
// module proxy) and checks what is in it. Set LETTERBOX_TEST_DEB=1 to run it.
func TestDebPackage(t *testing.T) {
	if os.Getenv("LETTERBOX_TEST_DEB") == "" {
		t.Skip("set LETTERBOX_TEST_DEB=1 to build the .deb (downloads nfpm)")
	}
	out := t.TempDir()
	cmd := exec.Command("sh", filepath.Join(deployDir, "package.sh"), out)
	cmd.Env = append(os.Environ(), "VERSION=0.0.1~test")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("package.sh: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("built %v", debs)
	}
	dpkgDeb, err := exec.LookPath("dpkg-deb")
	if err != nil {
		t.Skip("dpkg-deb not installed")
	}
	contents, err := exec.Command(dpkgDeb, "-c", debs[0]).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"-rwxr-xr-x root/root .* ./usr/bin/letterbox",
		" ./usr/lib/systemd/system/letterbox.service",
		" ./usr/lib/systemd/system/letterbox.socket",
		" ./usr/lib/sysusers.d/letterbox.conf",
		" ./usr/lib/tmpfiles.d/letterbox.conf",
		" ./etc/letterbox/letterbox.toml",
		" ./usr/share/doc/letterbox/examples/fail2ban/filter.d/letterbox.conf",
	} {
		if !regexp.MustCompile(want).Match(contents) {
			t.Errorf("package lacks %q:\n%s", want, contents)
		}
	}
	for field, want := range map[string]string{"Package": "letterbox", "Version": "0.0.1~test", "conffiles": "/etc/letterbox/letterbox.toml"} {
		args := []string{"-f", debs[0], field}
		if field == "conffiles" {
			args = []string{"--ctrl-tarfile", debs[0]}
		}
		b, err := exec.Command(dpkgDeb, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("dpkg-deb %v: %v %q, want %q", args, err, b, want)
		}
	}
}
