package imap

import (
	"bytes"
	"errors"
	"time"
)

// cmdIdle is RFC 2177 IDLE. One goroutine does it all: it waits for DONE
// with a read deadline at the next keepalive, and a change of the
// selected mailbox wakes the read (conn.wake), so the update goes out at
// once. The client gets "* OK Still here" every IdleKeepalive: NAT boxes
// drop silent flows, and a write to a dead client fails. IDLE is not cut
// by IdleTimeout.
func (s *session) cmdIdle(cmd *command) error {
	cmd.p.end()
	c := s.c
	if err := c.continuation("idling"); err != nil {
		return errConnClosed
	}
	if c.compressed {
		return s.idleCompressed(cmd)
	}
	keepalive := orDefault(s.srv.IdleKeepalive, DefaultIdleKeepalive)
	nextKeepalive := time.Now().Add(keepalive)
	if s.sel != nil {
		s.sel.q.setWake(c.wake)
		defer s.sel.q.setWake(s.selectedWake())
	}
	partial := false
	for {
		if s.sel != nil {
			if err := s.poll(true, true, false); err != nil {
				return err
			}
		}
		if err := s.notifyPass(false); err != nil {
			return err
		}
		now := time.Now()
		if !now.Before(nextKeepalive) {
			c.out.writeString("* OK Still here\r\n")
			nextKeepalive = now.Add(keepalive)
		}
		if c.out.flush() != nil {
			return errConnClosed
		}
		// Changes made elsewhere (other processes, other hosts) come by
		// the feed: the store follows the change log of every folder a
		// session waits on (store.Options.PollInterval), so a session in
		// IDLE never looks at the disk itself.
		deadline := nextKeepalive
		if s.sel != nil && s.sel.q.pending() || s.notifyPending.Load() {
			continue
		}
		line, ok, err := c.readIdle(s.srv.maxLine(), deadline, partial)
		switch {
		case errors.Is(err, errShutdown):
			c.bye("Server shutting down")
			return errConnClosed
		case errors.Is(err, errLineTooLong):
			c.bye("Line too long")
			return errConnClosed
		case err != nil:
			return errConnClosed
		case s.ctx.Err() != nil:
			return errConnClosed
		case !ok:
			partial = len(c.lineBuf) > 0
			continue
		}
		if !bytes.EqualFold(bytes.TrimRight(line, "\r\n"), []byte("DONE")) {
			return bad("", "Expected DONE")
		}
		cmd.okText = "IDLE terminated"
		return nil
	}
}

// idleCompressed is IDLE under COMPRESS=DEFLATE. The decompressor cannot
// be woken (a read error is final for it), so a second goroutine waits
// for DONE without a deadline while this one sends updates.
func (s *session) idleCompressed(cmd *command) error {
	c := s.c
	type result struct {
		line []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := c.readIdleBlocking(s.srv.maxLine())
		done <- result{bytes.Clone(line), err}
	}()
	stop := func() { // the reader uses the connection: end it first
		c.netConn().Close()
		<-done
	}
	notify := make(chan struct{}, 1)
	wake := func() {
		select {
		case notify <- struct{}{}:
		default:
		}
	}
	if s.sel != nil {
		s.sel.q.setWake(wake)
		defer s.sel.q.setWake(s.selectedWake())
	}
	// NOTIFY's feeds wake this loop too (outside IDLE conn.wake does
	// nothing under DEFLATE).
	defer s.waker.Store(s.waker.Swap(&wake))
	keepalive := time.NewTicker(orDefault(s.srv.IdleKeepalive, DefaultIdleKeepalive))
	defer keepalive.Stop()
	for {
		if s.sel != nil {
			if err := s.poll(true, true, false); err != nil {
				stop()
				return err
			}
		}
		if err := s.notifyPass(false); err != nil {
			stop()
			return err
		}
		if c.out.flush() != nil {
			stop()
			return errConnClosed
		}
		select {
		case r := <-done:
			switch {
			case errors.Is(r.err, errShutdown):
				c.bye("Server shutting down")
				return errConnClosed
			case errors.Is(r.err, errLineTooLong):
				c.bye("Line too long")
				return errConnClosed
			case r.err != nil:
				return errConnClosed
			}
			if !bytes.EqualFold(bytes.TrimRight(r.line, "\r\n"), []byte("DONE")) {
				return bad("", "Expected DONE")
			}
			cmd.okText = "IDLE terminated"
			return nil
		case <-notify:
		case <-keepalive.C:
			c.out.writeString("* OK Still here\r\n")
		case <-s.ctx.Done():
			stop()
			return errConnClosed
		}
	}
}
