package mailaddr

import (
	"fmt"
	"strings"
	"testing"
)

// show writes a list the way an ENVELOPE carries it: (name route mailbox
// host), "-" for empty, "{" and "}" for group markers.
func show(list []Address) string {
	var b strings.Builder
	for _, a := range list {
		switch a.Kind {
		case GroupStart:
			fmt.Fprintf(&b, "{%s ", a.Mailbox)
		case GroupEnd:
			b.WriteString("} ")
		default:
			f := func(s string) string {
				if s == "" {
					return "-"
				}
				return s
			}
			fmt.Fprintf(&b, "(%s|%s|%s|%s) ", f(a.Name), f(a.Route), f(a.Mailbox), f(a.Host))
		}
	}
	return strings.TrimSpace(b.String())
}

func TestList(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", ""},
		{"  \r\n ", ""},
		{`"Joe Q. Public" <john.q.public@example.com>`, "(Joe Q. Public|-|john.q.public|example.com)"},
		{`Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>`, "(Mary Smith|-|mary|x.test) (-|-|jdoe|example.org) (Who?|-|one|y.test)"},
		// RFC 5322 A.1.3: groups, as RFC 3501 §7.4.2 marks them.
		{`A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;`, "{A Group (Ed Jones|-|c|a.test) (-|-|joe|where.test) (John|-|jdoe|one.test) }"},
		{`Undisclosed recipients:;`, "{Undisclosed recipients }"},
		{`A Group:Ed Jones <c@a.test>,joe@where.test;, x@y`, "{A Group (Ed Jones|-|c|a.test) (-|-|joe|where.test) } (-|-|x|y)"},
		{`open: a@b`, "{open (-|-|a|b) }"},
		// A.5: comments everywhere; a comment names a bare addr-spec
		// (the last one, as Dovecot has it), never an angle-addr.
		{`Pete(A nice \) chap) <pete(his account)@silly.test(his host)>`, "(Pete|-|pete|silly.test)"},
		{`john@example.com (John  Doe)`, "(John Doe|-|john|example.com)"},
		{`a@b.test (Comm1) (Comm2)`, "(Comm2|-|a|b.test)"},
		{`<john@example.com> (John Doe)`, "(-|-|john|example.com)"},
		{`(Comment) <a@b.test>`, "(-|-|a|b.test)"},
		// RFC 5322 §4.4: routes (kept for ENVELOPE's route field), CFWS
		// around dots, empty members.
		{`<@route1,@route2:user@domain.test>`, "(-|@route1,@route2|user|domain.test)"},
		{`Joe <@a.test:joe@b.test>`, "(Joe|@a.test|joe|b.test)"},
		{`<user (comment)@ (comment) domain.org>`, "(-|-|user|domain.org)"},
		{`john . doe @ example . com`, "(-|-|john.doe|example.com)"},
		{`, , first@x.test`, "(-|-|first|x.test)"},
		{`"john doe"@example.com`, "(-|-|john doe|example.com)"},
		{`john@[192.0.2.1]`, "(-|-|john|[192.0.2.1])"},
		{`=?utf-8?q?J=C3=B6rg?= <joerg@x.test>`, "(=?utf-8?q?J=C3=B6rg?=|-|joerg|x.test)"},
		{"J\xf6rg <j@x.test>", "(J\xf6rg|-|j|x.test)"},
		{`John.Q.Public <jqp@x>`, "(John.Q.Public|-|jqp|x)"},
		// Broken but common.
		{`John <john@x.test`, "(John|-|john|x.test)"},
		{`John Doe john@example.com`, "(John Doe|-|john|example.com)"},
		{`Doe, John <john@x.test>`, "(-|-|Doe|-) (John|-|john|x.test)"},
		{`MAILER-DAEMON`, "(-|-|MAILER-DAEMON|-)"},
		{`a@b@c`, "(-|-|a|b)"},
		// No address at all: left out.
		{`<>`, ""},
		{`"Nobody" <>`, ""},
		{`John Doe`, ""},
		{`(only a comment)`, ""},
		{`@`, ""},
		{`;`, ""},
		{`(unterminated <a@b>`, ""},
	}
	for _, tt := range tests {
		list := List(tt.raw)
		if got := show(list); got != tt.want {
			t.Errorf("List(%q) = %s, want %s", tt.raw, got, tt.want)
		}
		first, ok := First(tt.raw)
		if ok != (len(list) > 0) || ok && first != list[0] {
			t.Errorf("First(%q) = %v %v, List's first %v", tt.raw, first, ok, list)
		}
	}
}

// FuzzList: any bytes, never a panic, and the shapes ENVELOPE relies on.
func FuzzList(f *testing.F) {
	for _, s := range []string{
		"", `"Joe Q. Public" <john.q.public@example.com>`, `A Group:Ed Jones <c@a.test>,joe@where.test;`,
		`Pete(A nice \) chap) <pete(his account)@silly.test(his host)>`, `<@a,@b:user@domain>`,
		`john . doe @ example . com`, "J\xf6rg <j@x>", `<`, `"`, `(`, `[`, `<"a>b"@c>`, `a@b@c`,
		`::;;,,<<>>`, `a: b: c@d;;`, `<@a:`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		list := List(raw)
		depth := 0
		for _, a := range list {
			switch a.Kind {
			case GroupStart:
				if a.Name != "" || a.Route != "" || a.Host != "" {
					t.Fatalf("%q: group start %+v", raw, a)
				}
				depth++
			case GroupEnd:
				if a != (Address{Kind: GroupEnd}) || depth == 0 {
					t.Fatalf("%q: group end %+v at depth %d", raw, a, depth)
				}
				depth--
			default:
				if a.Mailbox == "" && a.Host == "" {
					t.Fatalf("%q: empty address %+v", raw, a)
				}
			}
			if depth > 1 {
				t.Fatalf("%q: nested groups in %s", raw, show(list))
			}
		}
		if depth != 0 {
			t.Fatalf("%q: group left open in %s", raw, show(list))
		}
		first, ok := First(raw)
		if ok != (len(list) > 0) || ok && first != list[0] {
			t.Fatalf("First(%q) = %+v, List %s", raw, first, show(list))
		}
	})
}
