package pop3

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// A command that panics, to test the recovery. Registered before any test
// runs, so the table is never written while sessions read it.
func init() {
	commands["XPNC"] = command{anyState, func(*session, string) error { panic("test panic") }}
}

func TestPanicRecovered(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.allowPanic = true })
	ts.fill("alice")
	c := ts.login("alice")
	c.send("XPNC")
	c.expect("-ERR [SYS/TEMP] Internal error, try again later.")
	c.expectClosed()
	if !ts.logs.has("pop3: panic in session") {
		t.Error("the panic was not logged")
	}
	// The lock went with the session, and the server still serves.
	runSteps(t, ts.login("alice"), []step{{"STAT", "+OK 3 …"}, {"QUIT", "+OK Logging out."}})
}

// TestShutdown: idle sessions are told and closed at once, without
// UPDATE; a command in progress is finished first; Serve returns
// ErrServerClosed.
func TestShutdown(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.authOpts.FailDelay = time.Second })
	ts.fill("alice")
	idle := ts.login("alice")
	idle.send("DELE 1")
	idle.expect("+OK Marked to be deleted.")
	authz := ts.dialTLS()

	busy := ts.dial()
	busy.send("USER bob")
	busy.expect("+OK")
	busy.send("PASS wrong") // held for FailDelay by auth
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(context.Background()) }()

	idle.expect("-ERR [SYS/TEMP] Server shutting down.")
	idle.expectClosed()
	authz.expect("-ERR [SYS/TEMP] Server shutting down.")
	authz.expectClosed()
	if d := time.Since(start); d > 600*time.Millisecond {
		t.Errorf("idle sessions were told after %v", d)
	}
	// The command in flight gets its own reply, then the farewell.
	busy.expect("-ERR [AUTH] Authentication failed.\n-ERR [SYS/TEMP] Server shutting down.")
	busy.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("Shutdown returned after %v, before the command in flight ended", d)
	}
	for range 2 {
		if err := <-ts.served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}
	ts.served <- ErrServerClosed // for the cleanup's check
	ts.served <- ErrServerClosed
	if msgs, _ := ts.inbox("alice"); len(msgs) != 3 {
		t.Errorf("INBOX has %d messages after shutdown, want 3", len(msgs))
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Error("the listener still accepts")
	}
	if err := ts.srv.Serve(mustListen(t)); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

// TestShutdownDeadline: Shutdown gives up when ctx ends, and Close ends
// the rest.
func TestShutdownDeadline(t *testing.T) {
	ts := newTestServer(t, func(s *testSetup) { s.authOpts.FailDelay = 5 * time.Second })
	busy := ts.dial()
	busy.send("AUTH PLAIN " + plain("", "bob", "wrong"))
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	start := time.Now()
	if err := ts.srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	busy.conn.SetReadDeadline(timeIn10s())
	buf := make([]byte, 100)
	for {
		if _, err := busy.r.Read(buf); err != nil {
			break
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v to end the session", d)
	}
}

func TestServeNeedsAuthAndStore(t *testing.T) {
	if err := (&Server{}).Serve(mustListen(t)); err == nil || errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve without Auth and Store: %v", err)
	}
}

func mustListen(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestListenAndServe(t *testing.T) {
	ts := newTestServer(t)
	noTLS := &Server{Auth: ts.auth, Store: ts.store}
	if err := noTLS.ListenAndServeTLS("127.0.0.1:0"); err == nil || errors.Is(err, ErrServerClosed) {
		t.Errorf("ListenAndServeTLS without TLSConfig: %v", err)
	}
	srv := &Server{Auth: ts.auth, Store: ts.store, TLSConfig: serverTLSConfig(t)}
	done := make(chan error, 2)
	go func() { done <- srv.ListenAndServe("127.0.0.1:0") }()
	go func() { done <- srv.ListenAndServeTLS("127.0.0.1:0") }()
	time.Sleep(50 * time.Millisecond)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("got %v, want ErrServerClosed", err)
		}
	}
	if err := srv.ListenAndServe("127.0.0.1:0"); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ListenAndServe after Close: %v", err)
	}
}

// TestShutdownDuringHandshake: a client that connected to the TLS port and
// never starts the handshake does not hold Shutdown up.
func TestShutdownDuringHandshake(t *testing.T) {
	ts := newTestServer(t) // HandshakeTimeout: 30s default
	c := ts.dialRaw(ts.tlsAddr)
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	c.expectClosed()
}
