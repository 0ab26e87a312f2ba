package imap

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// sized builds a message from header lines with a body that makes it
// exactly size bytes.
func sized(size int, header ...string) string {
	h := strings.Join(header, "\r\n") + "\r\n\r\n"
	n := size - len(h) - 2
	var b strings.Builder
	b.WriteString(h)
	for n > 0 {
		l := min(n, 70)
		b.WriteString(strings.Repeat("x", l))
		n -= l
		if n > 0 {
			b.WriteString("\r\n")
			n -= min(n, 2)
		}
	}
	b.WriteString("\r\n")
	if b.Len() != size {
		panic(fmt.Sprintf("sized: %d bytes, want %d", b.Len(), size))
	}
	return b.String()
}

// sortBox fills alice's INBOX with the five messages of mailsort's
// TestSortCriteria (its expected orders hold here), behind an expunged
// first message so that UIDs (2-6) differ from sequence numbers (1-5).
// Internal dates are in 2020, sent dates in 2024, so message 3, whose Date
// cannot be read, comes first by DATE (RFC 5256 §2.2: its INTERNALDATE).
func sortBox(t *testing.T, e *testEnv) {
	t.Helper()
	date := func(day int) string { return fmt.Sprintf("Date: Mon, %d Jan 2024 10:00:00 +0000", day) }
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	gone := e.appendMsg("alice", "INBOX", msg("expunged"), 0)
	msgs := []struct {
		arrival int
		raw     string
	}{
		{50, sized(1300, "Subject: b", "From: Zed <alice@x.test>", "To: bob@x.test", "Cc: carol@x.test", date(3), "Message-ID: <1@x.test>")},
		{40, sized(1100, "Subject: A", `From: "adam" <zed@x.test>`, "To: Bob <ALICE@x.test>", date(1), "Message-ID: <2@x.test>")},
		{30, sized(1200, "Subject: Re: b", "From: BOB@x.test", "Date: nonsense", "Message-ID: <3@x.test>", "References: <1@x.test>")},
		{20, sized(1100, "Subject: ", "To: =?utf-8?q?=C3=A9mile?= <e@x.test>", "Cc: Dave <dave@x.test>", date(2), "Message-ID: <4@x.test>")},
		{10, sized(1500, "Subject: a", "From: alice@x.test", "To: bob@x.test", date(3), "Message-ID: <5@x.test>", "In-Reply-To: <2@x.test>")},
	}
	for _, m := range msgs {
		e.appendMsgAt("alice", "INBOX", m.raw, 0, base.Add(time.Duration(m.arrival)*time.Second))
	}
	mbox, err := e.user("alice").Open(context.Background(), "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	defer mbox.Close()
	if _, err := mbox.Expunge(context.Background(), store.ExpungeOptions{UIDs: []uint32{gone}}); err != nil {
		t.Fatal(err)
	}
}

// Every answer is the one Dovecot 2.3 gives over the same messages.
func TestSortCriteria(t *testing.T) {
	e := newEnv(t)
	sortBox(t, e)
	c := e.login("alice")
	c.ok("s SELECT INBOX")
	// Sequence numbers; the UID of n is n+1.
	for _, tt := range []struct{ crit, want string }{
		{"ARRIVAL", "5 4 3 2 1"},
		{"REVERSE ARRIVAL", "1 2 3 4 5"},
		{"DATE", "3 2 4 1 5"},
		{"REVERSE DATE", "1 5 4 2 3"}, // ties stay in mailbox order
		{"SIZE", "2 4 3 1 5"},
		{"REVERSE SIZE", "5 1 3 2 4"},
		{"SUBJECT", "4 2 5 1 3"}, // "" first; "A" = "a"; "b" = "Re: b"
		{"REVERSE SUBJECT", "1 3 2 5 4"},
		{"SUBJECT DATE", "4 2 5 3 1"},
		{"SUBJECT REVERSE DATE", "4 5 2 1 3"},
		{"FROM", "4 1 5 3 2"}, // "" < alice = alice < BOB < zed
		{"REVERSE FROM", "2 3 1 5 4"},
		{"TO", "3 2 1 5 4"}, // "" < ALICE < bob = bob < e
		{"REVERSE TO", "4 1 5 2 3"},
		{"CC", "2 3 5 1 4"}, // "" < carol < dave
		{"REVERSE CC", "4 1 2 3 5"},
		{"DISPLAYFROM", "4 2 5 3 1"}, // "" < adam < alice@x.test < BOB@x.test < Zed
		{"REVERSE DISPLAYFROM", "1 3 5 2 4"},
		{"DISPLAYTO", "3 2 1 5 4"}, // "" < Bob < bob@x.test = bob@x.test < émile
		{"REVERSE DISPLAYTO", "4 1 5 2 3"},
		{"FROM SUBJECT", "4 5 1 3 2"},
		{"FROM REVERSE SIZE", "4 5 1 3 2"},
		{"TO REVERSE ARRIVAL", "3 2 1 5 4"},
		{"TO ARRIVAL", "3 2 5 1 4"},
	} {
		seqs := strings.Fields(tt.want)
		uids := make([]string, len(seqs))
		for i, s := range seqs {
			var n int
			fmt.Sscan(s, &n)
			uids[i] = itoa(n + 1)
		}
		transcript(t, c, nil, fmt.Sprintf(`
			C: a SORT (%s) UTF-8 ALL
			S: * SORT %s
			S: a OK SORT completed
			C: b UID SORT (%s) utf-8 ALL
			S: * SORT %s
			S: b OK UID SORT completed
		`, tt.crit, tt.want, strings.ToLower(tt.crit), strings.Join(uids, " ")))
	}
}

func TestSortTranscript(t *testing.T) {
	e := newEnv(t)
	sortBox(t, e)
	c := e.login("alice")
	transcript(t, c, nil, `
		C: a0 SORT (SUBJECT) UTF-8 ALL
		S: a0 BAD No mailbox selected
		C: a1 SELECT INBOX
		S~ * 5 EXISTS
		S~ * 
		S~ * 
		S~ * 
		S~ * 
		S~ * 
		S~ * 
		S~ a1 OK [READ-WRITE]
		# Any search program; a set, keys, NOT and OR.
		C: a2 SORT (SUBJECT) US-ASCII NOT FROM alice
		S: * SORT 4 2 3
		S: a2 OK SORT completed
		C: a3 UID SORT (REVERSE DATE) UTF-8 OR SUBJECT b LARGER 1400
		S: * SORT 2 6 4
		S: a3 OK UID SORT completed
		C: a3b UID SORT (REVERSE DATE) UTF-8 2:4 OR SUBJECT b LARGER 1400
		S: * SORT 4
		S: a3b OK UID SORT completed
		C: a4 UID SORT (DATE) UTF-8 UID 3:5
		S: * SORT 4 3 5
		S: a4 OK UID SORT completed
		C: a5 SORT (ARRIVAL) UTF-8 SUBJECT nothing-like-this
		S: * SORT
		S: a5 OK SORT completed
		C: a6 SORT (SIZE) {5}
		S: + Ready for literal data
		C: UTF-8 5
		S: * SORT 5
		S: a6 OK SORT completed
		# Charsets: as SEARCH takes them.
		C: a7 SORT (SUBJECT) ISO-8859-1 ALL
		S: a7 NO [BADCHARSET (US-ASCII UTF-8)] Only UTF-8 and US-ASCII are supported
		C: a8 THREAD REFERENCES KOI8-R ALL
		S: a8 NO [BADCHARSET (US-ASCII UTF-8)] Only UTF-8 and US-ASCII are supported
		C: a9 SORT (TO) "UTF-8" TO "=?utf-8?q?"
		S: * SORT
		S: a9 OK SORT completed
		C: a10 SORT (SUBJECT) UTF-8 TO "ÉMILE"
		S: * SORT 4
		S: a10 OK SORT completed
		C: a11 SORT (SUBJECT) UTF-8 TO "émile"
		S: * SORT 4
		S: a11 OK SORT completed
		# ESORT (RFC 5267 §3): MIN and MAX are first and last in sort
		# order, ALL is in sort order with ranges only where it ascends.
		C: b1 SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL
		S: * ESEARCH (TAG "b1") ALL 4,2,5,1,3 MIN 4 MAX 3 COUNT 5
		S: b1 OK SORT completed
		C: b2 UID SORT RETURN () (REVERSE ARRIVAL) UTF-8 ALL
		S: * ESEARCH (TAG "b2") UID ALL 2:6
		S: b2 OK UID SORT completed
		C: b3 UID SORT RETURN (COUNT) (SUBJECT) UTF-8 ALL
		S: * ESEARCH (TAG "b3") UID COUNT 5
		S: b3 OK UID SORT completed
		C: b4 SORT RETURN (MIN) (DATE) UTF-8 SUBJECT nothing-like-this
		S: * ESEARCH (TAG "b4")
		S: b4 OK SORT completed
		C: b5 UID SORT RETURN (PARTIAL 2:3) (SUBJECT) UTF-8 ALL
		S: * ESEARCH (TAG "b5") UID PARTIAL (2:3 3,6)
		S: b5 OK UID SORT completed
		C: b6 UID SORT RETURN (PARTIAL 4:10 COUNT) (SUBJECT) UTF-8 ALL
		S: * ESEARCH (TAG "b6") UID COUNT 5 PARTIAL (4:10 2,4)
		S: b6 OK UID SORT completed
		C: b7 SORT RETURN (PARTIAL 6:9) (SUBJECT) UTF-8 ALL
		S: * ESEARCH (TAG "b7") PARTIAL (6:9 NIL)
		S: b7 OK SORT completed
		C: b8 SORT RETURN (SAVE MIN) (REVERSE SIZE) UTF-8 ALL
		S: * ESEARCH (TAG "b8") MIN 5
		S: b8 OK SORT completed
		C: b9 FETCH $ (UID)
		S: * 5 FETCH (UID 6)
		S: b9 OK FETCH completed
		C: b10 SORT RETURN (CONTEXT ALL) (SIZE) UTF-8 ALL
		S: * ESEARCH (TAG "b10") ALL 2,4,3,1,5
		S: b10 OK SORT completed
		# Bad input.
		C: c1 SORT (FOO) UTF-8 ALL
		S: c1 BAD Syntax error: unknown sort key FOO
		C: c2 SORT () UTF-8 ALL
		S: c2 BAD Syntax error: empty list
		C: c3 SORT (REVERSE) UTF-8 ALL
		S: c3 BAD Syntax error: REVERSE needs a sort key after it
		C: c4 SORT (REVERSE REVERSE SUBJECT) UTF-8 ALL
		S: c4 BAD Syntax error: unknown sort key REVERSE
		C: c5 SORT (SUBJECT) UTF-8
		S: c5 BAD Syntax error: expected a space
		C: c6 SORT (SUBJECT) ALL
		S: c6 BAD Syntax error: expected a space
		C: c7 SORT SUBJECT UTF-8 ALL
		S: c7 BAD Syntax error: expected "("
		C: c8 SORT (SUBJECT) UTF-8 BOGUS
		S: c8 BAD Syntax error: unknown search key BOGUS
		C: c9 SORT RETURN (BOGUS) (SUBJECT) UTF-8 ALL
		S: c9 BAD Syntax error: unknown RETURN option BOGUS
		C: c10 SORT RETURN (PARTIAL 1:2 ALL) (SUBJECT) UTF-8 ALL
		S: c10 BAD Syntax error: PARTIAL and ALL together
		C: c11 SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL
		S: c11 BAD UPDATE needs UID SEARCH
		C: c12 SORT (SUBJECT) UTF-8 ALL extra)
		S: c12 BAD Syntax error: unknown search key EXTRA
		C: c13 SORT (SUBJECT)UTF-8 ALL
		S: c13 BAD Syntax error: expected a space
		C: c14 SORT (SUBJECT SIZE
		S: c14 BAD Syntax error: expected a space
		C: c15 THREAD FOO UTF-8 ALL
		S: c15 BAD Syntax error: unknown thread algorithm FOO
		C: c16 THREAD REFERENCES UTF-8
		S: c16 BAD Syntax error: expected a space
		C: c17 UID THREAD (REFERENCES) UTF-8 ALL
		S: c17 BAD Syntax error: expected a keyword
		C: c18 NOOP
		S: c18 OK NOOP completed
	`)
}

// threadBox fills alice's "Threads" with two conversations, one reply
// arriving before its parent, one message replying to a parent that is
// not in the mailbox, and subjects that merge threads (RFC 5256 §3 step 5).
func threadBox(t *testing.T, e *testEnv) {
	t.Helper()
	if err := e.user("alice").Create("Threads", ""); err != nil {
		t.Fatal(err)
	}
	date := func(day, hour int) string { return fmt.Sprintf("Date: %d Mar 2024 %02d:00:00 +0000", day, hour) }
	for _, h := range [][]string{
		/* 1 */ {"Subject: Plans", "Message-ID: <1@x>", date(1, 9)},
		/* 2 */ {"Subject: Re: Plans", "Message-ID: <2@x>", "In-Reply-To: <1@x>", date(1, 10)},
		/* 3 */ {"Subject: Other", "Message-ID: <3@x>", date(2, 9)},
		/* 4 */ {"Subject: Re: Plans", "Message-ID: <4@x>", "References: <1@x> <2@x>", date(1, 12)},
		/* 5 */ {"Subject: Re: Other", "Message-ID: <5@x>", "References: <3@x>", date(2, 10)},
		/* 6 */ {"Subject: RE: Plans", "Message-ID: <6@x>", "References: <1@x>", date(1, 11)},
		/* 7 */ {"Subject: Fwd: Lost", "Message-ID: <7@x>", "References: <missing@x>", date(3, 9)},
		/* 8 */ {"Subject: Re: Other", "Message-ID: <8@x>", date(2, 8)}, // no references: merged by subject
		/* 9 */ {"Subject: Re: Re: Plans", "Message-ID: <9@x>", "In-Reply-To: <4@x>", date(1, 8)}, // dated before its parent
	} {
		e.appendMsg("alice", "Threads", strings.Join(h, "\r\n")+"\r\n\r\nbody\r\n", 0)
	}
}

// The answers are those Dovecot 2.3 gives over the same messages.
func TestThreadTranscript(t *testing.T) {
	e := newEnv(t)
	sortBox(t, e)
	threadBox(t, e)
	c := e.login("alice")
	c.ok("s SELECT INBOX")
	transcript(t, c, nil, `
		C: a1 THREAD REFERENCES UTF-8 ALL
		S: * THREAD (2 5)(4)(1 3)
		S: a1 OK THREAD completed
		C: a2 UID THREAD REFERENCES UTF-8 ALL
		S: * THREAD (3 6)(5)(2 4)
		S: a2 OK UID THREAD completed
		C: a3 THREAD ORDEREDSUBJECT UTF-8 ALL
		S: * THREAD (3 1)(2 5)(4)
		S: a3 OK THREAD completed
		C: a4 THREAD REFERENCES UTF-8 SUBJECT nothing-like-this
		S: * THREAD
		S: a4 OK THREAD completed
		# Only what the search found is threaded: 3's parent is left out.
		C: a5 THREAD REFERENCES UTF-8 NOT 1
		S: * THREAD (3)(2 5)(4)
		S: a5 OK THREAD completed
	`)
	c.ok("s2 SELECT Threads")
	transcript(t, c, nil, `
		C: b1 THREAD REFERENCES UTF-8 ALL
		S: * THREAD (1 (2 4 9)(6))(3 (8)(5))(7)
		S: b1 OK THREAD completed
		C: b2 THREAD ORDEREDSUBJECT US-ASCII ALL
		S: * THREAD (9 (1)(2)(6)(4))(8 (3)(5))(7)
		S: b2 OK THREAD completed
		C: b3 UID THREAD REFERENCES UTF-8 SUBJECT plans
		S: * THREAD (1 (2 4 9)(6))
		S: b3 OK UID THREAD completed
	`)
}

// SORT with the MODSEQ search key (RFC 7162 §3.1.5) enables CONDSTORE and
// says the highest MODSEQ of what it returns; THREAD takes the key too.
func TestSortModSeq(t *testing.T) {
	e := newEnv(t)
	sortBox(t, e)
	c := e.login("alice")
	c.ok("s SELECT INBOX")
	vars := map[string]string{}
	transcript(t, c, vars, `
		C: m1 UID STORE 4 +FLAGS.SILENT (\Flagged)
		S: m1 OK UID STORE completed
		C: m2 UID FETCH 4 (MODSEQ)
		S: * OK [HIGHESTMODSEQ ${=H}] Highest
		S: * 3 FETCH (UID 4 MODSEQ (${=M}))
		S: m2 OK UID FETCH completed
		C: m3 UID SORT (SUBJECT) UTF-8 MODSEQ ${M}
		S: * SORT 4 (MODSEQ ${M})
		S: m3 OK UID SORT completed
		C: m4 UID SORT RETURN (MIN COUNT) (REVERSE SUBJECT) UTF-8 MODSEQ 1
		S: * ESEARCH (TAG "m4") UID MIN 2 COUNT 5 MODSEQ ${=TOP}
		S: m4 OK UID SORT completed
		C: m5 THREAD REFERENCES UTF-8 MODSEQ ${M}
		S: * THREAD (3)
		S: m5 OK THREAD completed
	`)
	if vars["TOP"] != vars["M"] {
		t.Errorf("ESORT MODSEQ %s, want the highest, %s", vars["TOP"], vars["M"])
	}
}
