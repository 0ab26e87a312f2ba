package main

// LMTP on the wire: line ends, shutdown and timeouts.

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/config"
)

// A client that sends bare LF gets headers with bare LF too.
func TestLMTPBareLF(t *testing.T) {
	e := newLMTPEnv(t, nil, "alice")
	conn, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	for _, step := range []struct{ send, want string }{
		{"", "220 "},
		{"LHLO x\r\n", "250 "},
		{"MAIL FROM:<a@b>\r\n", "250 "},
		{"RCPT TO:<alice@x.test>\r\n", "250 "},
		{"DATA\r\n", "354 "},
		{"Subject: lf\n\nbody\r\n.\r\n", "250 "}, // the end marker needs CRLF
	} {
		if step.send != "" {
			io.WriteString(conn, step.send)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("after %q: %v", step.send, err)
			}
			if line[3] == '-' {
				continue
			}
			if !strings.HasPrefix(line, step.want) {
				t.Fatalf("after %q: %q, want %q", step.send, line, step.want)
			}
			break
		}
	}
	if got := newFiles(t, e.maildir("alice")); len(got) != 1 || got[0] != "Return-Path: <a@b>\nDelivered-To: alice@x.test\nSubject: lf\n\nbody\r\n" {
		t.Errorf("stored %q", got)
	}
}

// Shutdown ends an idle connection (Postfix keeps them open) with 421 at
// once, instead of waiting for the client.
func TestLMTPShutdownIdle(t *testing.T) {
	e := newLMTPEnv(t, nil, "alice")
	conn, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	r.ReadString('\n') // greeting
	io.WriteString(conn, "NOOP\r\n")
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "250") {
		t.Fatalf("NOOP: %q", line)
	}
	time.Sleep(50 * time.Millisecond) // let the server wait for the next command

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "421") {
		t.Errorf("idle client got %q, want 421", line)
	}
	select {
	case err := <-e.served:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return")
	}
}

// A transaction in progress when Shutdown starts is finished and
// acknowledged; then the connection is closed.
func TestLMTPShutdownFinishesTransaction(t *testing.T) {
	e := newLMTPEnv(t, nil, "alice")
	conn, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	expect := func(prefix string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("want %q: %v", prefix, err)
			}
			if len(line) > 3 && line[3] == '-' {
				continue
			}
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("got %q, want %q", line, prefix)
			}
			return
		}
	}
	expect("220")
	io.WriteString(conn, "LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@x.test>\r\nDATA\r\n")
	expect("250")
	expect("250")
	expect("250")
	expect("354")
	io.WriteString(conn, "Subject: half\r\n\r\nfirst half\r\n") // the transfer is under way

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	io.WriteString(conn, "second half\r\n.\r\n")
	expect("250")
	expect("421")
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if got := newFiles(t, e.maildir("alice")); len(got) != 1 || !strings.HasSuffix(got[0], "first half\r\nsecond half\r\n") {
		t.Errorf("stored %q", got)
	}
}

func TestLMTPTimeout(t *testing.T) {
	e := newLMTPEnv(t, func(c *config.LMTP) { c.Timeout = 200 * time.Millisecond }, "alice")
	conn, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	r.ReadString('\n')
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "421") {
		t.Errorf("silent client got %q, want 421", line)
	}
}
