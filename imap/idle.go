package imap

import (
	"bytes"
	"errors"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// idleCheck is how often IDLE looks at the disk itself, for changes the
// store's inotify watch cannot see (NFS, other hosts).
const idleCheck = 10 * time.Second

// cmdIdle is RFC 2177 IDLE. A second goroutine waits for DONE while this
// one sends the updates of the selected mailbox as they come, and
// "* OK Still here" every IdleKeepalive: NAT boxes drop silent flows, and
// a write to a dead client fails. IDLE is not cut by IdleTimeout.
func (s *session) cmdIdle(cmd *command) error {
	cmd.p.end()
	c := s.c
	if err := c.continuation("idling"); err != nil {
		return errConnClosed
	}
	type result struct {
		line []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := c.readIdleLine(s.srv.maxLine())
		done <- result{bytes.Clone(line), err}
	}()
	// stop ends the reader before returning: it uses the connection.
	stop := func() {
		c.netConn().Close()
		<-done
	}
	keepalive := time.NewTicker(orDefault(s.srv.IdleKeepalive, DefaultIdleKeepalive))
	defer keepalive.Stop()
	check := time.NewTicker(idleCheck)
	defer check.Stop()
	var notify <-chan struct{}
	if s.sel != nil {
		notify = s.sel.q.notify
	}
	for {
		if s.sel != nil {
			if err := s.poll(true, true); err != nil {
				stop()
				return err
			}
			if c.out.flush() != nil {
				stop()
				return errConnClosed
			}
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
		case <-check.C:
			if s.sel != nil {
				s.sel.mbox.Read(s.ctx, func(*store.View) {})
			}
		case <-keepalive.C:
			c.out.writeString("* OK Still here\r\n")
			if c.out.flush() != nil {
				stop()
				return errConnClosed
			}
		case <-s.ctx.Done():
			stop()
			return errConnClosed
		}
	}
}
