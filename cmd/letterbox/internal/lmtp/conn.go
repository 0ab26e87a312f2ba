package lmtp

import (
	"bytes"
	"cmp"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// maxHeld is the most of an unfinished command line conn holds back.
// Longer, it goes to go-smtp, whose line limit (2000 bytes) ends the
// session.
const maxHeld = 4096

// conn is one client connection as go-smtp sees it. go-smtp sets a read
// deadline of IdleTimeout before it reads each command line, and never
// again until the next one; conn adds the rest.
//
// Whole command lines: go-smtp reads commands with textproto, which takes
// the bytes before a read error for a whole line, so a line cut off by a
// deadline would run as a command. conn therefore holds back an
// unfinished command line until its line end arrives, and hands go-smtp
// one whole line at a time. Once the line's first byte has arrived, the
// deadline moves to CommandTimeout after it, however often bytes trickle
// in. After a command line, until go-smtp waits for the next one, bytes
// pass straight through: a message, a BDAT chunk.
//
// A message transfer (beginData) has DataTimeout from its start; one that
// runs out ends the connection (expire).
//
// Drain: Shutdown moves the deadline of a connection that waits for a
// command outside a transaction to now, so go-smtp answers "421" and
// hangs up; any other gets the same when it next waits for a command
// outside a transaction. A client that stalls inside a transaction is cut
// off by Close when the drain time is up; it has had no 250 for the
// message, so it sends it again later.
type conn struct {
	net.Conn
	s   *Server
	log *slog.Logger

	// Used only by the goroutine reading, one at a time.
	held []byte // read from the client, not yet handed to go-smtp
	rbuf []byte

	mu        sync.Mutex
	armed     bool      // go-smtp waits for a command line
	idle      time.Time // go-smtp's deadline for it
	lineStart time.Time // first byte of the held, unfinished line
	data      time.Time // deadline of the transfer under way, or zero
	waiting   bool      // armed, and no byte of the line yet
	busy      bool      // in a transaction: MAIL until reset
	draining  bool
	expired   bool // a transfer ran out of time: end at the next command
	closed    sync.Once
}

// SetReadDeadline is go-smtp's call before each command line (and
// before a TLS handshake, which LMTP here does not offer).
func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle, c.data = t, time.Time{}
	c.armed, c.waiting = true, len(c.held) == 0
	return c.applyLocked()
}

// applyLocked sets the deadline in force on the raw connection.
func (c *conn) applyLocked() error {
	t := c.idle
	switch {
	case c.expired, c.draining && !c.busy && c.waiting:
		t = time.Now()
	case !c.data.IsZero():
		t = c.data
	case c.armed && !c.lineStart.IsZero():
		if d := c.lineStart.Add(cmp.Or(c.s.CommandTimeout, DefaultCommandTimeout)); t.IsZero() || d.Before(t) {
			t = d
		}
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	armed := c.armed
	c.mu.Unlock()
	if !armed {
		if len(c.held) > 0 {
			return c.release(p, len(c.held)), nil
		}
		n, err := c.Conn.Read(p)
		if err != nil {
			c.logTimeout(err)
		}
		return n, err
	}
	for {
		if i := bytes.IndexByte(c.held, '\n'); i >= 0 || len(c.held) >= maxHeld {
			if i < 0 {
				i = len(c.held) - 1
			}
			n := c.release(p, i+1)
			c.mu.Lock()
			if n == i+1 { // the whole line: a command begins
				c.armed = false
			}
			if len(c.held) == 0 {
				c.lineStart = time.Time{}
			}
			c.mu.Unlock()
			return n, nil
		}
		if c.rbuf == nil {
			c.rbuf = make([]byte, 4096)
		}
		n, err := c.Conn.Read(c.rbuf)
		if n > 0 {
			c.mu.Lock()
			if len(c.held) == 0 {
				c.lineStart = time.Now()
				c.waiting = false
				c.applyLocked()
			}
			c.mu.Unlock()
			c.held = append(c.held, c.rbuf[:n]...)
			continue
		}
		if err != nil {
			// An unfinished line is dropped, never run as a command.
			c.logTimeout(err)
			return 0, err
		}
	}
}

// release hands go-smtp up to n held bytes.
func (c *conn) release(p []byte, n int) int {
	n = copy(p, c.held[:n])
	c.held = c.held[:copy(c.held, c.held[n:])]
	return n
}

func (c *conn) logTimeout(err error) {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.expired, c.draining:
	case !c.data.IsZero():
		c.log.Info("lmtp: message transfer not finished in time")
	case len(c.held) > 0:
		c.log.Info("lmtp: command line not finished in time")
	case c.armed:
		c.log.Debug("lmtp: idle timeout")
	default:
		c.log.Info("lmtp: read timeout")
	}
}

// beginData starts the transfer deadline; the next command wait ends it.
func (c *conn) beginData() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data = time.Now().Add(cmp.Or(c.s.DataTimeout, DefaultDataTimeout))
	c.applyLocked()
}

// expire ends the connection at its next command wait, after a transfer
// that broke off in the middle: what follows on the wire is the rest of
// the message, not commands.
func (c *conn) expire() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expired = true
}

// setBusy marks the start (MAIL) and end (reset) of a transaction.
func (c *conn) setBusy(busy bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = busy
}

// drain is Shutdown's call.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if c.waiting && !c.busy {
		c.applyLocked()
	}
}

func (c *conn) Close() error {
	c.closed.Do(func() { c.s.forget(c) })
	return c.Conn.Close()
}

// NetConn returns the connection underneath, for code that looks through
// wrappers.
func (c *conn) NetConn() net.Conn { return c.Conn }
