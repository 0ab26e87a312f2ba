package mailsort

import (
	"fmt"
	"testing"
)

// refMsg is a message for REFERENCES tests: header lines, and by default
// Message-ID <n@t>, subject "Subject n" and a date that rises with n.
// Its INTERNALDATE is n, which the tests use as its number.
func refMsg(n int, lines ...string) Keys {
	return msg(int64(n), append(lines,
		fmt.Sprintf("Message-ID: <%d@t>", n),
		fmt.Sprintf("Subject: Subject %d", n),
		"Date: "+date(1, n%24),
	)...)
}

func TestThreadReferencesEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		keys []Keys
		want string
	}{
		{"self reference", []Keys{
			refMsg(1, "References: <1@t>"),
		}, "(1)"},
		{"self reference after a real parent", []Keys{
			refMsg(1),
			refMsg(2, "References: <1@t> <2@t>"),
		}, "(1 2)"},
		{"two-message loop", []Keys{
			// 1.B links 2 -> 1 first; 1 -> 2 would then close a loop.
			refMsg(1, "References: <2@t>"),
			refMsg(2, "References: <1@t>"),
		}, "(2 1)"},
		{"loop through References", []Keys{
			refMsg(1, "References: <3@t> <2@t>"),
			refMsg(2, "References: <1@t> <3@t>"),
			refMsg(3, "References: <2@t> <1@t>"),
		}, "(3 2 1)"},
		{"reference listed twice", []Keys{
			refMsg(1),
			refMsg(2, "References: <1@t> <1@t>"),
			refMsg(3, "References: <1@t> <2@t> <1@t> <2@t>"),
		}, "(1 2 3)"},
		{"duplicate Message-ID", []Keys{
			// 2 repeats 1's ID; references to it mean 1, the first.
			refMsg(1),
			refMsg(2, "Message-ID: <1@t>", "Subject: Other"),
			refMsg(3, "References: <1@t>"),
		}, "(1 3)(2)"},
		{"no Message-ID", []Keys{
			msg(1, "Subject: A", "Date: "+date(1, 1)),
			msg(2, "Subject: B", "Date: "+date(1, 2)),
			refMsg(3, "References: <>"),
		}, "(1)(2)(3)"},
		{"missing parent, one child: promoted", []Keys{
			refMsg(1, "References: <gone@t>"),
		}, "(1)"},
		{"missing parent, two children: dummy", []Keys{
			refMsg(1, "References: <gone@t>"),
			refMsg(2, "References: <gone@t>"),
		}, "((1)(2))"},
		{"missing grandparent and parent", []Keys{
			refMsg(1, "References: <g@t> <p@t>"),
			refMsg(2, "References: <g@t> <p@t>"),
			refMsg(3, "References: <g@t> <q@t>"),
		}, "((1)(2)(3))"},
		{"missing middle of a chain", []Keys{
			refMsg(1),
			refMsg(2, "References: <1@t> <gone@t>"),
			refMsg(3, "References: <1@t> <gone@t>"),
		}, "(1 (2)(3))"},
		{"parent arrives later in the mailbox", []Keys{
			refMsg(2, "References: <1@t>"),
			refMsg(1),
		}, "(1 2)"},
		{"truncated References: 1.B replaces the parent 1.A gave", []Keys{
			// 2's References make 9 the parent of 1; 1's own (none)
			// then win, and the dummy 9 goes.
			refMsg(2, "References: <9@t> <1@t>"),
			refMsg(1),
		}, "(1 2)"},
		{"1.B unlinks a message from among several siblings", []Keys{
			refMsg(1, "References: <p@t> <3@t>"), // p -> 3 -> 1
			refMsg(2, "References: <p@t> <4@t>"), // p -> 4 -> 2
			refMsg(3),                            // 3 leaves p
			refMsg(4, "References: <p@t>"),
		}, "(3 1)(4 2)"},
		{"own References beat another message's", []Keys{
			refMsg(1),
			refMsg(2),
			refMsg(4, "References: <1@t> <3@t>"), // 1 -> 3
			refMsg(3, "References: <2@t>"),       // 2 -> 3 wins
		}, "(1)(2 3 4)"},
		{"1.A keeps an existing parent", []Keys{
			refMsg(1),
			refMsg(2),
			refMsg(3, "References: <1@t>"),
			refMsg(4, "References: <2@t> <3@t>"), // 3 keeps 1
		}, "(1 3 4)(2)"},
		{"In-Reply-To when References has no valid ID", []Keys{
			refMsg(1),
			refMsg(2, "References: <broken>", "In-Reply-To: <1@t> <2@t>"),
		}, "(1 2)"},
		{"quoting does not split a thread", []Keys{
			refMsg(1, `Message-ID: <"a.b"@t>`),
			refMsg(2, "References: <a.b@t>"),
		}, "(1 2)"},
		{"message IDs are case-sensitive", []Keys{
			refMsg(1, "Message-ID: <ABC@t>"),
			refMsg(2, "References: <abc@t>"),
		}, "(1)(2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := ThreadReferences(tt.keys)
			checkThreads(t, th, len(tt.keys))
			nums := make([]uint32, len(tt.keys))
			for i, k := range tt.keys {
				nums[i] = uint32(k.Arrival) // refMsg puts n there
			}
			if got := render(th, nums); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// Step 5, case by case.
func TestThreadReferencesSubjects(t *testing.T) {
	tests := []struct {
		name string
		keys []Keys
		want string
	}{
		{"reply joins the original", []Keys{
			refMsg(1, "Subject: Plan"),
			refMsg(2, "Subject: Re: plan"),
		}, "(1 2)"},
		{"original found after its reply", []Keys{
			refMsg(1, "Subject: Re: Plan"),
			refMsg(2, "Subject: Plan"),
		}, "(2 1)"},
		{"two originals get a dummy", []Keys{
			refMsg(1, "Subject: Plan"),
			refMsg(2, "Subject: Plan"),
			refMsg(3, "Subject: Re: Plan"),
		}, "((1)(2)(3))"},
		{"two replies get a dummy", []Keys{
			refMsg(1, "Subject: Re: Plan"),
			refMsg(2, "Fwd: Plan"),
		}, "(1)(2)"},
		{"forward marked by a trailer", []Keys{
			refMsg(1, "Subject: Plan"),
			refMsg(2, "Subject: Plan (fwd)"),
		}, "(1 2)"},
		{"forward marked by a wrapper", []Keys{
			refMsg(1, "Subject: Plan"),
			refMsg(2, "Subject: [Fwd: Plan]"),
		}, "(1 2)"},
		{"a list tag is not a reply", []Keys{
			refMsg(1, "Subject: Plan"),
			refMsg(2, "Subject: [list] Plan"),
		}, "((1)(2))"},
		{"empty subjects are never gathered", []Keys{
			refMsg(1, "Subject: Re:"),
			refMsg(2, "Subject: "),
		}, "(1)(2)"},
		{"a thread joins a dummy of its subject", []Keys{
			refMsg(1, "Subject: Re: Plan", "References: <gone@t>"),
			refMsg(2, "Subject: Re: Plan", "References: <gone@t>"),
			refMsg(3, "Subject: Plan"),
			refMsg(4, "Subject: Re: Plan", "References: <3@t>"),
		}, "((1)(2)(3 4))"},
		{"a dummy's subject is its first child's", []Keys{
			refMsg(3, "Subject: Plan", "References: <gone@t>"),
			refMsg(2, "Subject: Other", "References: <gone@t>"),
			refMsg(1, "Subject: Re: Other"),
		}, "((1)(2)(3))"}, // with 3's subject, 1 would stay apart
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := ThreadReferences(tt.keys)
			checkThreads(t, th, len(tt.keys))
			nums := make([]uint32, len(tt.keys))
			for i, k := range tt.keys {
				nums[i] = uint32(k.Arrival)
			}
			if got := render(th, nums); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestThreadDates(t *testing.T) {
	// Sent dates order siblings; a message without one uses its
	// INTERNALDATE (RFC 5256 §2.2); equal dates keep mailbox order.
	keys := []Keys{
		msg(100, "Message-ID: <1@t>", "Subject: A", "Date: "+date(5, 0)),
		msg(date2unix(3), "Message-ID: <2@t>", "Subject: Re: A", "References: <1@t>"),
		msg(0, "Message-ID: <3@t>", "Subject: Re: A", "References: <1@t>", "Date: "+date(4, 0)),
		msg(0, "Message-ID: <4@t>", "Subject: Re: A", "References: <1@t>", "Date: "+date(4, 0)),
		msg(0, "Message-ID: <5@t>", "Subject: B", "Date: bogus"),
	}
	if got := render(ThreadReferences(keys), seqNums(5)); got != "(5)(1 (2)(3)(4))" {
		t.Fatalf("REFERENCES got %s", got)
	}
	if got := render(ThreadOrderedSubject(keys), seqNums(5)); got != "(5)(2 (3)(4)(1))" {
		t.Fatalf("ORDEREDSUBJECT got %s", got)
	}
}

func date2unix(day int) int64 {
	t, _ := SentDate(date(day, 0))
	return t.Unix()
}

func TestThreadOrderedSubject(t *testing.T) {
	keys := []Keys{
		msg(0, "Subject: Re: b", "Date: "+date(2, 0)),
		msg(0, "Subject: a", "Date: "+date(3, 0)),
		msg(0, "Subject: B", "Date: "+date(1, 0)),
		msg(0, "Subject:", "Date: "+date(4, 0)),
		msg(0, "Subject: Re:", "Date: "+date(5, 0)),
		msg(0, "Subject: [x] b", "Date: "+date(1, 0)),
	}
	th := ThreadOrderedSubject(keys)
	checkThreads(t, th, len(keys))
	for _, r := range th {
		for _, c := range r.Children {
			if len(c.Children) > 0 {
				t.Fatal("ORDEREDSUBJECT has no grandchildren (RFC 5256 §3)")
			}
		}
	}
	if got := render(th, seqNums(len(keys))); got != "(3 (6)(1))(2)(4 5)" {
		t.Fatalf("got %s", got)
	}
}

func TestAppendThreads(t *testing.T) {
	m := func(n int, kids ...*Thread) *Thread { return &Thread{Msg: n, Children: kids} }
	d := func(kids ...*Thread) *Thread { return &Thread{Msg: -1, Children: kids} }
	tests := []struct {
		threads []*Thread
		want    string
	}{
		{nil, ""},
		{[]*Thread{m(0)}, "(1)"},
		{[]*Thread{m(0, m(1, m(2, m(3))))}, "(1 2 3 4)"},
		{[]*Thread{m(0, m(1, m(2, m(3)), m(4)))}, "(1 2 (3 4)(5))"},
		{[]*Thread{m(1), m(2, m(5, m(3, m(22)), m(43, m(6, m(95)))))}, "(2)(3 6 (4 23)(44 7 96))"},
		{[]*Thread{d(m(2), m(4))}, "((3)(5))"},
		{[]*Thread{d(m(2))}, "(3)"},                    // a dummy with one child is transparent
		{[]*Thread{d(), m(0)}, "(1)"},                  // a dummy with nothing is not shown
		{[]*Thread{d(d(), d(d()))}, ""},                // at any depth
		{[]*Thread{m(0, d(m(1), m(2)))}, "(1 (2)(3))"}, // a dummy child's children are siblings
		{[]*Thread{m(0, d(m(1), m(2)), m(3))}, "(1 ((2)(3))(4))"},
		{[]*Thread{m(0, d(), m(1))}, "(1 2)"},
	}
	for _, tt := range tests {
		got := render(tt.threads, seqNums(100))
		if got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
		if _, err := parseThreadData(got); err != nil {
			t.Errorf("%s: %v", got, err)
		}
	}
}
