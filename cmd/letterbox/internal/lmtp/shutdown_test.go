package lmtp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/lbtest"
)

// Shutdown ends an idle connection (Postfix keeps them open) with 421 at
// once, instead of waiting for the client.
func TestShutdownIdle(t *testing.T) {
	e := newTestEnv(t, nil, "alice")
	c := e.raw()
	c.Send("NOOP")
	c.Expect("250")
	time.Sleep(50 * time.Millisecond) // let the server wait for the next command

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := c.Rest(); !strings.HasPrefix(got, "421") {
		t.Errorf("idle client got %q, want 421", got)
	}
	for range 2 {
		select {
		case err := <-e.served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
		e.served <- ErrServerClosed // for the cleanup
	}
}

// A transaction in progress when Shutdown starts is finished and
// acknowledged; then the connection is closed.
func TestShutdownFinishesTransaction(t *testing.T) {
	e := newTestEnv(t, nil, "alice")
	c := e.raw()
	expect := func(prefix string) {
		t.Helper()
		for line := c.Line(); ; line = c.Line() {
			if len(line) > 3 && line[3] == '-' {
				continue
			}
			if !strings.HasPrefix(line, prefix) {
				t.Fatalf("got %q, want %q", line, prefix)
			}
			return
		}
	}
	c.Send("LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@x.test>\r\nDATA")
	expect("250")
	expect("250")
	expect("250")
	expect("354")
	c.Send("Subject: half\r\n\r\nfirst half") // the transfer is under way

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	c.Send("second half\r\n.")
	expect("250")
	expect("421")
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if got := lbtest.NewMail(t, e.maildir("alice")); len(got) != 1 || !strings.HasSuffix(got[0], "first half\r\nsecond half\r\n") {
		t.Errorf("stored %q", got)
	}
}
