package imap

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// conn is the transport of one connection: reading with deadlines and
// limits, the output buffer, STARTTLS and COMPRESS. Only the connection's
// own goroutine reads and writes, except during IDLE, when a second
// goroutine waits for DONE while the first writes updates.
type conn struct {
	srv      *Server
	id       uint64
	ip       netip.Addr
	accepted net.Conn // as Serve accepted it, for the Observer

	mu  sync.Mutex // guards raw, which STARTTLS replaces, and wakeOff
	raw net.Conn
	// wakeOff: wake does nothing (COMPRESS is on: the decompressor
	// cannot take a read cut short).
	wakeOff bool

	// deadline is the read deadline the connection means to have (unix
	// nanoseconds); a timeout before it is Shutdown waking the reader.
	// interruptible is set while waiting for a command (or DONE): then
	// that wake-up ends the wait.
	deadline      atomic.Int64
	interruptible atomic.Bool
	stopping      atomic.Bool
	// woken is set by wake: during IDLE a change of the selected mailbox
	// ends the wait for DONE, so the one goroutine can send it.
	woken atomic.Bool

	br         *bufio.Reader
	lineBuf    []byte
	out        output
	isTLS      bool
	compressed bool
	closeOnce  sync.Once
}

var (
	errLineTooLong = errors.New("imap: line too long")
	errShutdown    = errors.New("imap: server shutting down")
	errIdleTimeout = errors.New("imap: idle timeout")
	errWoken       = errors.New("imap: woken")
)

// inBufSize is the read buffer: small, since every idle connection holds
// one.
const inBufSize = 1 << 10

func newConn(s *Server, raw net.Conn, ip netip.Addr, id uint64) *conn {
	_, isTLS := raw.(*tls.Conn)
	c := &conn{srv: s, id: id, ip: ip, accepted: raw, raw: raw, isTLS: isTLS}
	c.br = bufio.NewReaderSize(netReader{c}, inBufSize)
	c.out.dst = deadlineWriter{raw, s.writeTimeout()}
	return c
}

func (c *conn) netConn() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raw
}

// netReader reads from the network, hiding Shutdown's wake-ups from a
// reader in the middle of a command: it goes on until the deadline it
// meant to have.
type netReader struct{ c *conn }

func (r netReader) Read(p []byte) (int, error) {
	for {
		raw := r.c.netConn()
		n, err := raw.Read(p)
		if n > 0 || err == nil {
			return n, nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			dl := time.Unix(0, r.c.deadline.Load())
			woken := r.c.interruptible.Load() && (r.c.stopping.Load() || r.c.woken.Load())
			if time.Now().Before(dl) && !woken {
				raw.SetReadDeadline(dl)
				continue
			}
		}
		return 0, err
	}
}

func (c *conn) setDeadline(t time.Time) {
	c.deadline.Store(t.UnixNano())
	c.netConn().SetReadDeadline(t)
}

// lineDeadline is the deadline of a command line starting now.
func (c *conn) lineDeadline() time.Time {
	return time.Now().Add(orDefault(c.srv.CommandLineTimeout, DefaultCommandLineTimeout))
}

// waitCommand waits for the first byte of the next command, at most
// timeout; Shutdown ends the wait at once, and so does a wake when due
// (NOTIFY: something to send) says so, with errWoken.
func (c *conn) waitCommand(timeout time.Duration, due func() bool) error {
	if c.br.Buffered() > 0 {
		return nil
	}
	c.interruptible.Store(true)
	defer c.interruptible.Store(false)
	deadline := time.Now().Add(timeout)
	for {
		c.woken.Store(false)
		c.setDeadline(deadline)
		if c.stopping.Load() {
			return errShutdown
		}
		// After the deadline is armed: a wake from now on cuts the
		// Peek; one before it has set what due reads.
		if due != nil && due() {
			return errWoken
		}
		_, err := c.br.Peek(1)
		switch {
		case err == nil:
			return nil
		case c.stopping.Load():
			return errShutdown
		case errors.Is(err, os.ErrDeadlineExceeded):
			if time.Now().Before(deadline) {
				continue // a wake: see whether it is due
			}
			return errIdleTimeout
		}
		return err
	}
}

// readLine reads one line, LF included, of at most max bytes, by the
// deadline.
func (c *conn) readLine(max int, deadline time.Time) ([]byte, error) {
	c.setDeadline(deadline)
	return c.readLineNow(max)
}

// readLineNow reads one line with the deadline already set.
func (c *conn) readLineNow(max int) ([]byte, error) {
	c.lineBuf = c.lineBuf[:0]
	for {
		chunk, err := c.br.ReadSlice('\n')
		if len(c.lineBuf)+len(chunk) > max {
			return nil, errLineTooLong
		}
		c.lineBuf = append(c.lineBuf, chunk...)
		if err == nil {
			return c.lineBuf, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// wake ends a wait in readIdle or waitCommand at once. It is the store's
// feed callback for a session in IDLE or with NOTIFY, so it only flags
// and pokes the deadline; a read in the middle of a command does not take
// the poke (netReader).
func (c *conn) wake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wakeOff {
		return
	}
	c.woken.Store(true)
	c.raw.SetReadDeadline(time.Now())
}

// readIdle waits, until the deadline or a wake, for the line that ends
// IDLE. A line cut by the wait is kept and completed by the next call;
// ok is false while it is not complete. IDLE is not cut by the idle
// timeout: keepalives find dead clients.
func (c *conn) readIdle(max int, deadline time.Time, partial bool) (line []byte, ok bool, err error) {
	c.interruptible.Store(true)
	defer c.interruptible.Store(false)
	if !partial {
		c.lineBuf = c.lineBuf[:0]
	}
	c.setDeadline(deadline)
	if c.stopping.Load() {
		return nil, false, errShutdown
	}
	if c.woken.Swap(false) {
		// Updates wait: read only a line that is here already.
		n := c.br.Buffered()
		if b, _ := c.br.Peek(n); n == 0 || bytes.IndexByte(b, '\n') < 0 {
			return nil, false, nil
		}
	}
	for {
		chunk, err := c.br.ReadSlice('\n')
		if len(c.lineBuf)+len(chunk) > max {
			return nil, false, errLineTooLong
		}
		c.lineBuf = append(c.lineBuf, chunk...)
		switch {
		case err == nil:
			return c.lineBuf, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case c.stopping.Load():
			return nil, false, errShutdown
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.woken.Store(false)
			return nil, false, nil
		}
		return nil, false, err
	}
}

// readIdleBlocking reads the line that ends IDLE without a deadline;
// only Shutdown (or closing the connection) ends the wait.
func (c *conn) readIdleBlocking(max int) ([]byte, error) {
	c.interruptible.Store(true)
	defer c.interruptible.Store(false)
	c.setDeadline(time.Now().Add(10 * 365 * 24 * time.Hour))
	if c.stopping.Load() {
		return nil, errShutdown
	}
	line, err := c.readLineNow(max)
	if err != nil && c.stopping.Load() {
		return nil, errShutdown
	}
	return line, err
}

// readSome reads literal bytes: each read may stall ReadTimeout.
func (c *conn) readSome(b []byte) (int, error) {
	c.setDeadline(time.Now().Add(orDefault(c.srv.ReadTimeout, DefaultReadTimeout)))
	n, err := c.br.Read(b)
	if n > 0 {
		return n, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return 0, err
}

func (c *conn) readFull(b []byte) error {
	for len(b) > 0 {
		n, err := c.readSome(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// discard reads and drops n bytes.
func (c *conn) discard(n int64) error {
	for n > 0 {
		c.setDeadline(time.Now().Add(orDefault(c.srv.ReadTimeout, DefaultReadTimeout)))
		m, err := c.br.Discard(int(min(n, 32<<10)))
		n -= int64(m)
		if err != nil && n > 0 {
			return err
		}
	}
	return nil
}

// continuation sends a continuation request and flushes.
func (c *conn) continuation(text string) error {
	c.out.writeString("+ " + text + "\r\n")
	return c.out.flush()
}

// bye says goodbye, flushes and closes.
func (c *conn) bye(text string) {
	c.out.writeString("* BYE " + text + "\r\n")
	c.out.flush()
	c.close()
}

// close flushes and closes; only the connection's goroutine calls it.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.out.flush()
		c.netConn().Close()
	})
}

// abort closes the connection from another goroutine (Server.Close): the
// connection's goroutine then fails on its next read or write and ends.
func (c *conn) abort() {
	c.netConn().Close()
}

// shutdown asks the connection to end before its next command, and wakes
// it if it waits for one.
func (c *conn) shutdown() {
	c.stopping.Store(true)
	c.netConn().SetReadDeadline(time.Now())
}

// startTLS turns the connection into TLS (RFC 3501 §6.2.1). Input the
// client sent after STARTTLS in the clear is dropped with the old reader,
// so nothing can be injected into the TLS session (RFC 2595 §3.1).
func (c *conn) startTLS() error {
	tc := tls.Server(c.netConn(), c.srv.TLSConfig)
	tc.SetDeadline(time.Now().Add(orDefault(c.srv.LoginTimeout, DefaultLoginTimeout)))
	if err := tc.Handshake(); err != nil {
		return err
	}
	tc.SetDeadline(time.Time{})
	c.mu.Lock()
	c.raw = tc
	c.mu.Unlock()
	c.br = bufio.NewReaderSize(netReader{c}, inBufSize)
	c.out.dst = deadlineWriter{tc, c.srv.writeTimeout()}
	c.isTLS = true
	return nil
}

// startCompress turns on COMPRESS=DEFLATE (RFC 4978) in both directions:
// raw DEFLATE (RFC 1951). Bytes the client sent right after the command
// are already compressed.
func (c *conn) startCompress() {
	c.mu.Lock()
	c.wakeOff = true
	c.mu.Unlock()
	var left []byte
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		left = bytes.Clone(b)
	}
	fr := flate.NewReader(io.MultiReader(bytes.NewReader(left), netReader{c}))
	c.br = bufio.NewReaderSize(fr, inBufSize)
	fw, _ := flate.NewWriter(deadlineWriter{c.netConn(), c.srv.writeTimeout()}, flate.BestSpeed)
	c.out.dst, c.out.sync = fw, fw.Flush
	c.compressed = true
}
