package imap

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
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
