package mailsort

import "testing"

func TestAddressKeys(t *testing.T) {
	tests := []struct {
		raw, mailbox, display string
	}{
		{"", "", ""},
		{"   ", "", ""},
		{`"Joe Q. Public" <john.q.public@example.com>`, "john.q.public", "Joe Q. Public"},
		{`Joe Q. Public <jqp@example.com>`, "jqp", "Joe Q. Public"}, // obs-phrase with "."
		{`Mary Smith <mary@x.test>, jdoe@example.org`, "mary", "Mary Smith"},
		{`<boss@nil.test>`, "boss", "boss@nil.test"},
		{`john@example.com`, "john", "john@example.com"},
		{`john@example.com (John Doe)`, "john", "John Doe"},
		// A comment names only a bare addr-spec, as in ENVELOPE (and
		// Dovecot's).
		{`<john@example.com> (John Doe)`, "john", "john@example.com"},
		{`john@example.com (First) (Last)`, "john", "Last"},
		// RFC 5322 appendix A.5: comments everywhere.
		{`Pete(A nice \) chap) <pete(his account)@silly.test(his host)>`, "pete", "Pete"},
		// A.1.3 and RFC 3501 §7.4.2: a group's first address is its
		// start marker, whose mailbox is the group name.
		{`A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;`, "A Group", "A Group"},
		{`Undisclosed recipients:;`, "Undisclosed recipients", "Undisclosed recipients"},
		{`"Friends": ;`, "Friends", "Friends"},
		// RFC 5322 §4.4 obsolete forms.
		{`<@route1,@route2:user@domain.test>`, "user", "user@domain.test"},
		{`Joe <@a.test:joe@b.test>`, "joe", "Joe"},
		{`john . doe @ example . com`, "john.doe", "john.doe@example.com"},
		{`, , first@x.test, second@y.test`, "first", "first@x.test"},
		{`"john doe"@example.com`, "john doe", "john doe@example.com"},
		{`"john"."doe"@example.com`, "john.doe", "john.doe@example.com"},
		{`john@[192.0.2.1]`, "john", "john@[192.0.2.1]"},
		// RFC 5957 §3: the name with encoded-words decoded.
		{`=?utf-8?q?J=C3=B6rg?= <joerg@x.test>`, "joerg", "Jörg"},
		{`"=?utf-8?q?J=C3=B6rg?=" <joerg@x.test>`, "joerg", "Jörg"},
		{`=?utf-8?q?_?= <blank@x.test>`, "blank", "blank@x.test"}, // empty after decoding
		{`"" <blank@x.test>`, "blank", "blank@x.test"},
		{"Jörg <j@x.test>", "j", "Jörg"},
		{"J\xf6rg <j@x.test>", "j", "Jörg"}, // raw Latin-1
		{"John\r\n Doe <j@x.test>", "j", "John Doe"},
		{`"Doe, John" <john@x.test>`, "john", "Doe, John"},
		// Broken but common.
		{`John <john@x.test`, "john", "John"},
		{`John Doe john@example.com`, "john", "John Doe"},
		{`Doe, John <john@x.test>`, "Doe", "Doe"},
		{`MAILER-DAEMON`, "MAILER-DAEMON", "MAILER-DAEMON"},
		{`<>`, "", ""},
		// No address: ENVELOPE leaves it out, so the next one is first.
		{`"Nobody" <>`, "", ""},
		{`"Nobody" <>, next@x.test`, "next", "next@x.test"},
		// Unparseable: the zero address.
		{`John Doe`, "", ""},
		{`(only a comment)`, "", ""},
		{`@`, "", ""},
		{`;`, "", ""},
		{`<`, "", ""},
		{`"unterminated`, "unterminated", "unterminated"},
		{`(unterminated <a@b>`, "", ""},
	}
	for _, tt := range tests {
		if got := AddrMailboxKey(tt.raw); got != tt.mailbox {
			t.Errorf("AddrMailboxKey(%q) = %q, want %q", tt.raw, got, tt.mailbox)
		}
		if got := DisplayKey(tt.raw); got != tt.display {
			t.Errorf("DisplayKey(%q) = %q, want %q", tt.raw, got, tt.display)
		}
	}
}
