package imap

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Benchmarks of the FETCH encoder and of SEARCH, end to end over TCP on a
// real store, and of the encoder alone. Run with
//
//	go test -run XXX -bench . -benchmem ./imap

const benchMessages = 500

func benchEnv(b *testing.B) *rawClient {
	e := newEnv(b)
	for i := 0; i < benchMessages; i++ {
		mc := messageCases[i%len(messageCases)]
		raw := string(readFile(b, filepath.Join("testdata", "messages", mc.file)))
		e.appendMsg("alice", "INBOX", strings.Replace(raw, "Subject: ", fmt.Sprintf("Subject: %d ", i), 1), 0)
	}
	c := e.login("alice")
	c.ok("s SELECT INBOX")
	return c
}

// drainTagged reads responses up to the tagged one without parsing them.
func (c *rawClient) drainTagged(tag string) {
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatal(err)
		}
		if strings.HasPrefix(l, tag+" ") {
			return
		}
		if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}\r\n") {
			var n int64
			fmt.Sscanf(l[i+1:], "%d", &n)
			io.CopyN(io.Discard, c.r, n)
		}
	}
}

func BenchmarkFetchHeaders(b *testing.B) {
	c := benchEnv(b)
	b.ResetTimer()
	for b.Loop() {
		c.send("f UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID)])")
		c.drainTagged("f")
	}
	b.ReportMetric(float64(b.N*benchMessages)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkFetchBodies(b *testing.B) {
	c := benchEnv(b)
	b.ResetTimer()
	for b.Loop() {
		c.send("f FETCH 1:* (BODY.PEEK[])")
		c.drainTagged("f")
	}
	b.ReportMetric(float64(b.N*benchMessages)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkFetchStructure(b *testing.B) {
	c := benchEnv(b)
	b.ResetTimer()
	for b.Loop() {
		c.send("f FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)")
		c.drainTagged("f")
	}
}

func BenchmarkSearchHeader(b *testing.B) {
	c := benchEnv(b)
	b.ResetTimer()
	for b.Loop() {
		c.send("s SEARCH FROM bob UNDELETED")
		c.drainTagged("s")
	}
}

func BenchmarkSearchBody(b *testing.B) {
	c := benchEnv(b)
	b.ResetTimer()
	for b.Loop() {
		c.send(`s SEARCH BODY "lunch at noon"`)
		c.drainTagged("s")
	}
}

// BenchmarkEncodeStructure is the encoder alone: ENVELOPE and
// BODYSTRUCTURE of a parsed message into the output buffer.
func BenchmarkEncodeStructure(b *testing.B) {
	raw := onWire(readFile(b, filepath.Join("testdata", "messages", "03-forward.eml")))
	root, err := parseMessage(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	o := output{dst: io.Discard}
	b.ReportAllocs()
	for b.Loop() {
		writeEnvelope(&o, envelope(root))
		writeBodyStructure(&o, root, true)
		o.flushBuf()
	}
}

// TestIdleFootprint measures the memory of IDLE sessions over TLS and how
// fast a delivery reaches them, with a client in another process:
//
//	LETTERBOX_IDLE_CLIENT=/path/to/idleclient LETTERBOX_IDLE_N=1000 go test -run TestIdleFootprint -v ./imap
//
// The client opens N TLS connections that log in, select INBOX and IDLE,
// prints READY, and for each timestamp read on stdin reports when the
// EXISTS of that delivery arrived.
func TestIdleFootprint(t *testing.T) {
	client, nStr := os.Getenv("LETTERBOX_IDLE_CLIENT"), os.Getenv("LETTERBOX_IDLE_N")
	if client == "" || nStr == "" {
		t.Skip("LETTERBOX_IDLE_CLIENT and LETTERBOX_IDLE_N not set")
	}
	n, _ := strconv.Atoi(nStr)
	e := newEnv(t, withServer(func(s *Server) {
		s.MaxConnections, s.MaxConnectionsPerIP, s.MaxConnectionsPerUser = n+10, n+10, n+10
		s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	for i := 0; i < 10; i++ {
		e.appendMsg("alice", "INBOX", msg(itoa(i)), 0)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cmd := exec.Command(client, e.tlsAddr, nStr)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	out := bufio.NewReader(stdout)
	if l, err := out.ReadString('\n'); err != nil || l != "READY\n" {
		t.Fatalf("client: %q %v", l, err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(n) / 1024 }
	t.Logf("%d IDLE sessions over TLS: heap %.1f KiB, stacks %.1f KiB, total from the OS %.1f KiB per session; %d goroutines",
		n, per(after.HeapInuse, before.HeapInuse), per(after.StackInuse, before.StackInuse),
		per(after.Sys, before.Sys), runtime.NumGoroutine())
	for i := 0; i < 3; i++ {
		fmt.Fprintln(stdin, time.Now().UnixNano())
		e.appendMsg("alice", "INBOX", msg("delivery"), 0)
		l, _ := out.ReadString('\n')
		t.Logf("delivery %d: %s", i, strings.TrimSpace(l))
	}
}

func BenchmarkFetchFlags(b *testing.B) {
	c := benchEnv(b)
	b.ResetTimer()
	for b.Loop() {
		c.send("f UID FETCH 1:* (UID FLAGS)")
		c.drainTagged("f")
	}
	b.ReportMetric(float64(b.N*benchMessages)/b.Elapsed().Seconds(), "msgs/s")
}
