package pop3

import (
	"fmt"

	"github.com/letterbox-mail/letterbox/store"
)

// update is the UPDATE state (RFC 1939 §6), entered by QUIT: messages
// retrieved and not deleted get \Seen, deleted ones are expunged. The
// session ends either way.
func (s *session) update() error {
	var seen, del []uint32
	for _, m := range s.msgs {
		switch {
		case m.deleted:
			del = append(del, m.uid)
		case m.retrieved:
			seen = append(seen, m.uid)
		}
	}
	if len(seen) > 0 {
		// \Seen is a courtesy to IMAP clients of the same mailbox;
		// failing to set it is no reason to fail the QUIT.
		if _, err := s.mbox.SetFlags(s.ctx, seen, store.FlagsAdd, store.FlagSeen, nil, s); err != nil {
			s.log.Error("pop3: setting \\Seen at QUIT", "err", err)
		}
	}
	if len(del) > 0 {
		if left := s.expunge(del); left > 0 {
			// RFC 1939 §6: "-ERR some deleted messages not removed".
			s.writeReply(&replyError{code: codeSysTemp, text: fmt.Sprintf("%d of %d deleted messages not removed, try again later.", left, len(del))})
			return errQuit
		}
		s.log.Info("pop3: logged out", "deleted", len(del))
		s.writeLine("+OK Logging out, messages deleted.")
		return errQuit
	}
	s.log.Info("pop3: logged out", "deleted", 0)
	s.writeLine("+OK Logging out.")
	return errQuit
}

// expunge removes the messages and returns how many of them are still
// there. It checks the mailbox afterwards instead of trusting the count of
// removed UIDs, because a message another session expunged meanwhile is
// gone as wanted though this call did not remove it.
func (s *session) expunge(uids []uint32) int {
	removed, err := s.mbox.Expunge(s.ctx, store.ExpungeOptions{UIDs: uids, Origin: s})
	if err == nil && len(removed) == len(uids) {
		return 0
	}
	if err != nil {
		s.log.Error("pop3: expunge at QUIT", "err", err)
	}
	left := 0
	rerr := s.mbox.Read(s.ctx, func(v *store.View) {
		for _, uid := range uids {
			if v.Seq(uid) > 0 {
				left++
			}
		}
	})
	if rerr != nil {
		s.log.Error("pop3: checking expunge at QUIT", "err", rerr)
		return len(uids) - len(removed)
	}
	if left > 0 {
		s.log.Error("pop3: messages not expunged at QUIT", "left", left, "wanted", len(uids))
	}
	return left
}
