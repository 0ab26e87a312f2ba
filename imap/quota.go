package imap

import (
	"github.com/letterbox-mail/letterbox/store"
)

// QUOTA (RFC 9208): one quota root, "", over all of a user's mailboxes,
// with the resources STORAGE (in units of 1024 octets) and MESSAGE, from
// Server.QuotaStorage and QuotaMessages. Usage is the sum of store.Status
// over the user's folders.

func (s *session) quotaOn() bool { return s.srv.QuotaStorage > 0 || s.srv.QuotaMessages > 0 }

// usage sums the size and message count of every folder of the user.
func (s *session) usage() (size int64, messages int64, err error) {
	infos, err := s.user.List()
	if err != nil {
		return 0, 0, err
	}
	for _, mi := range infos {
		if mi.NoSelect {
			continue
		}
		st, err := s.status(mi.Name, nil)
		if err != nil {
			continue // deleted meanwhile
		}
		size += st.Size
		messages += int64(st.Messages)
	}
	return size, messages, nil
}

var errOverQuota = no("OVERQUOTA", "Quota exceeded")

// checkQuotaAdd refuses adding n messages of size bytes over the quota.
func (s *session) checkQuotaAdd(size, n int64) error {
	if !s.quotaOn() {
		return nil
	}
	used, msgs, err := s.usage()
	if err != nil {
		return err
	}
	if s.srv.QuotaStorage > 0 && used+size > s.srv.QuotaStorage ||
		s.srv.QuotaMessages > 0 && msgs+n > s.srv.QuotaMessages {
		return errOverQuota
	}
	return nil
}

// checkQuota refuses a COPY of messages of the selected mailbox over the
// quota.
func (s *session) checkQuota(uids []uint32) error {
	if !s.quotaOn() {
		return nil
	}
	var size int64
	err := s.sel.mbox.Read(s.ctx, func(v *store.View) {
		for _, u := range uids {
			if i := v.Seq(u) - 1; i >= 0 {
				size += v.At(i).Size
			}
		}
	})
	if err != nil {
		return err
	}
	return s.checkQuotaAdd(size, int64(len(uids)))
}

func (s *session) writeQuota() error {
	size, msgs, err := s.usage()
	if err != nil {
		return err
	}
	o := &s.c.out
	o.writeString(`* QUOTA "" (`)
	sep := ""
	if s.srv.QuotaStorage > 0 {
		o.writeString("STORAGE " + itoa64((size+1023)/1024) + " " + itoa64(s.srv.QuotaStorage/1024))
		sep = " "
	}
	if s.srv.QuotaMessages > 0 {
		o.writeString(sep + "MESSAGE " + itoa64(msgs) + " " + itoa64(s.srv.QuotaMessages))
	}
	o.writeString(")\r\n")
	return nil
}

// cmdGetQuota is GETQUOTA (RFC 9208 §4.2).
func (s *session) cmdGetQuota(cmd *command) error {
	p := cmd.p
	p.sp()
	root := p.astring()
	p.end()
	if !s.quotaOn() || root != "" {
		return no("NONEXISTENT", "No such quota root")
	}
	return s.writeQuota()
}

// cmdGetQuotaRoot is GETQUOTAROOT (RFC 9208 §4.3).
func (s *session) cmdGetQuotaRoot(cmd *command) error {
	p := cmd.p
	p.sp()
	raw := p.astring()
	p.end()
	name, err := s.decodeName(raw)
	if err != nil {
		return err
	}
	m, err := s.user.Open(s.ctx, name)
	if err != nil {
		return err
	}
	m.Close()
	o := &s.c.out
	o.writeString("* QUOTAROOT ")
	s.writeName(name)
	if !s.quotaOn() {
		o.crlf()
		return nil
	}
	o.writeString(` ""` + "\r\n")
	return s.writeQuota()
}

// cmdSetQuota is SETQUOTA (RFC 9208 §4.4): limits come from the
// configuration, not from clients.
func (s *session) cmdSetQuota(cmd *command) error {
	p := cmd.p
	p.sp()
	p.astring()
	p.sp()
	p.list(true, func() {
		p.atom()
		p.sp()
		p.number64(1<<63 - 1)
	})
	p.end()
	return no("NOPERM", "Quotas are set by the administrator")
}
