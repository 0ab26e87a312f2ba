package imap

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
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

// CONTEXT=SORT (RFC 5267 §4.3): two sorted contexts kept up to date as
// messages arrive, change flags and are expunged, with the positions a
// client applies in turn; CANCELUPDATE ends one.
func TestSortContextUpdates(t *testing.T) {
	e := newEnv(t)
	sortBox(t, e)
	a, b := e.login("alice"), e.login("alice")
	a.ok("a0 SELECT INBOX")
	b.ok("b0 SELECT INBOX")
	appendAt := func(tag, date, subject string) string {
		m := "Subject: " + subject + "\r\n\r\nx\r\n"
		return fmt.Sprintf("%s APPEND INBOX %q {%d+}\r\n%s", tag, date, len(m), m)
	}
	transcript(t, a, nil, `
		C: u1 UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNDELETED
		S: * ESEARCH (TAG "u1") UID ALL 5,3,6,2,4
		S: u1 OK UID SORT completed
		C: u2 UID SORT RETURN (UPDATE COUNT) (REVERSE ARRIVAL) UTF-8 ALL
		S: * ESEARCH (TAG "u2") UID COUNT 5
		S: u2 OK UID SORT completed
		C: u1 UID SORT RETURN (UPDATE) (SIZE) UTF-8 ALL
		S: u1 BAD Tag reuse
	`)
	// A new message: after "b" and "Re: b" by subject, first by arrival.
	b.ok(appendAt("b1", "01-Jan-2030 00:00:00 +0000", "B2"))
	transcript(t, a, nil, `
		C: a1 NOOP
		S: * 6 EXISTS
		S: * ESEARCH (TAG "u1") UID ADDTO (6 7)
		S: * ESEARCH (TAG "u2") UID ADDTO (1 7)
		S: a1 OK NOOP completed
	`)
	// Two more at once: two runs in u1, one in u2.
	b.ok(appendAt("b2", "03-Jan-2030 00:00:00 +0000", "aa"))
	b.ok(appendAt("b3", "02-Jan-2030 00:00:00 +0000", "0"))
	transcript(t, a, nil, `
		C: a2 NOOP
		S: * 7 EXISTS
		S: * 8 EXISTS
		S: * ESEARCH (TAG "u1") UID ADDTO (2 9 5 8)
		S: * ESEARCH (TAG "u2") UID ADDTO (1 8:9)
		S: a2 OK NOOP completed
		# Deleted: no longer UNDELETED.
		C: a3 UID STORE 3 +FLAGS.SILENT (\Deleted)
		S: * ESEARCH (TAG "u1") UID REMOVEFROM (3 3)
		S: a3 OK UID STORE completed
	`)
	// Expunged by another session: out of both contexts.
	b.ok(`b4 UID STORE 4 +FLAGS.SILENT (\Deleted)`)
	b.ok(`b5 UID EXPUNGE 4`)
	transcript(t, a, nil, `
		C: a4 NOOP
		S: * 3 FETCH (UID 4 FLAGS (\Deleted \Recent))
		S: * 3 EXPUNGE
		S: * ESEARCH (TAG "u1") UID REMOVEFROM (6 4)
		S: * ESEARCH (TAG "u2") UID REMOVEFROM (6 4)
		S: a4 OK NOOP completed
	`)
	b.ok(`b7 UID STORE 3 -FLAGS (\Deleted)`)
	transcript(t, a, nil, `
		C: a5 NOOP
		S: * 2 FETCH (UID 3 FLAGS (\Recent))
		S: * ESEARCH (TAG "u1") UID ADDTO (3 3)
		S: a5 OK NOOP completed
		# What the contexts hold now is what a new SORT says.
		C: a6 UID SORT (SUBJECT) UTF-8 UNDELETED
		S: * SORT 5 9 3 6 8 2 7
		S: a6 OK UID SORT completed
		C: a7 UID SORT (REVERSE ARRIVAL) UTF-8 ALL
		S: * SORT 8 9 7 2 3 5 6
		S: a7 OK UID SORT completed
		C: a8 CANCELUPDATE "u1"
		S: a8 OK CANCELUPDATE completed
	`)
	b.ok(appendAt("b8", "04-Jan-2030 00:00:00 +0000", "zz"))
	transcript(t, a, nil, `
		C: a9 NOOP
		S: * 8 EXISTS
		S: * ESEARCH (TAG "u2") UID ADDTO (1 10)
		S: * 4 RECENT
		S: a9 OK NOOP completed
	`)
}

// A sorted context applied as a client applies it (RFC 5267 §4.3.3,
// §4.3.4: pairs in order) stays what a new UID SORT says, through random
// arrivals, flag changes and expunges by another session.
func TestSortContextRandom(t *testing.T) {
	e := newEnv(t)
	sortBox(t, e)
	a, b := e.login("alice"), e.login("alice")
	a.ok("a SELECT INBOX")
	b.ok("b SELECT INBOX")
	contexts := map[string]string{
		"u": "(SUBJECT REVERSE DATE) UTF-8 UNDELETED",
		"v": "(REVERSE ARRIVAL SIZE) UTF-8 ALL",
	}
	lists := map[string][]uint32{}
	for tag, crit := range contexts {
		u := a.ok(tag + " UID SORT RETURN (UPDATE) " + crit)
		lists[tag] = parseSortedSet(t, strings.TrimPrefix(u[0], `* ESEARCH (TAG "`+tag+`") UID ALL `))
	}
	r := rand.New(rand.NewPCG(7, 7))
	subjects := []string{"a", "B", "Re: a", "c", "", "b"}
	applied := map[string]int{}
	for round := 0; round < 30; round++ {
		var untagged []string // what a was told, in order
		for range 1 + r.IntN(3) {
			switch r.IntN(7) {
			case 5: // a's own changes are told to a as well
				untagged = append(untagged, a.ok(fmt.Sprintf(`o UID STORE %d:%d %sFLAGS (\Deleted)`, 2+r.IntN(10), 4+r.IntN(20), "+-"[r.IntN(2):][:1]))...)
			case 6:
				untagged = append(untagged, a.ok(`o UID EXPUNGE 1:*`)...)
			case 0, 1:
				m := fmt.Sprintf("Subject: %s\r\nDate: %d Feb 2024 10:00:00 +0000\r\n\r\n%s\r\n",
					subjects[r.IntN(len(subjects))], 1+r.IntN(5), strings.Repeat("x", r.IntN(3)))
				b.ok(fmt.Sprintf("b APPEND INBOX (\\Seen) %q {%d+}\r\n%s",
					fmt.Sprintf("%02d-Mar-2024 10:00:00 +0000", 1+r.IntN(20)), len(m), m))
			case 2:
				b.ok(fmt.Sprintf(`b STORE %d:%d +FLAGS.SILENT (\Deleted)`, 1+r.IntN(4), 1+r.IntN(8)))
			case 3:
				b.ok(fmt.Sprintf(`b STORE %d:* -FLAGS.SILENT (\Deleted)`, 1+r.IntN(8)))
			case 4:
				b.ok(`b EXPUNGE`)
			}
		}
		untagged = append(untagged, a.ok("n NOOP")...)
		for _, l := range untagged {
			for tag := range contexts {
				if rest, ok := strings.CutPrefix(l, `* ESEARCH (TAG "`+tag+`") UID `); ok {
					lists[tag] = applyContext(t, lists[tag], rest)
					item, _, _ := strings.Cut(rest, " ")
					applied[tag+" "+item]++
				}
			}
		}
		for tag, crit := range contexts {
			fresh := a.ok("s UID SORT " + crit)
			want := strings.TrimSpace(strings.TrimPrefix(fresh[0], "* SORT"))
			if got := joinUIDs(lists[tag]); got != want {
				t.Fatalf("round %d: context %s holds %s, SORT says %s (updates %q)", round, tag, got, want, untagged)
			}
		}
	}
	for _, k := range []string{"u ADDTO", "u REMOVEFROM", "v ADDTO", "v REMOVEFROM"} {
		if applied[k] < 5 {
			t.Errorf("too few updates to tell: %v", applied)
		}
	}
}

// parseSortedSet expands a sequence-set written in sort order.
func parseSortedSet(t *testing.T, s string) []uint32 {
	t.Helper()
	var out []uint32
	if s == "" {
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		var a, b uint32
		fmt.Sscan(lo, &a)
		b = a
		if isRange {
			fmt.Sscan(hi, &b)
		}
		if a > b {
			t.Fatalf("descending range %s", part) // RFC 5267 §3.2: SHOULD be avoided
		}
		for n := a; n <= b; n++ {
			out = append(out, n)
		}
	}
	return out
}

// applyContext applies "ADDTO (pos set ...)" or "REMOVEFROM (...)".
func applyContext(t *testing.T, list []uint32, data string) []uint32 {
	t.Helper()
	item, args, _ := strings.Cut(data, " ")
	f := strings.Fields(strings.Trim(args, "()"))
	for i := 0; i+1 < len(f); i += 2 {
		var pos int
		fmt.Sscan(f[i], &pos)
		set := parseSortedSet(t, f[i+1])
		if pos < 1 || pos > len(list)+1 {
			t.Fatalf("%s position %d in a list of %d", item, pos, len(list))
		}
		switch item {
		case "ADDTO":
			list = slices.Insert(list, pos-1, set...)
		case "REMOVEFROM":
			if pos-1+len(set) > len(list) || !slices.Equal(list[pos-1:pos-1+len(set)], set) {
				t.Fatalf("REMOVEFROM (%d %s) from %v", pos, f[i+1], list)
			}
			list = slices.Delete(list, pos-1, pos-1+len(set))
		default:
			t.Fatalf("unknown context item %q", data)
		}
	}
	return list
}

func joinUIDs(l []uint32) string {
	s := make([]string, len(l))
	for i, u := range l {
		s[i] = itoa(int(u))
	}
	return strings.Join(s, " ")
}

// go-imap's client drives SORT and THREAD.
func TestSortImapclient(t *testing.T) {
	e := newEnv(t)
	sortBox(t, e)
	threadBox(t, e)
	c := e.client("alice", nil)
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range []imap.Cap{imap.CapSort, imap.CapSortDisplay, imap.CapESort, "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "CONTEXT=SORT"} {
		if !caps.Has(cp) {
			t.Errorf("capability %s missing", cp)
		}
	}
	if algs := caps.ThreadAlgorithms(); len(algs) != 2 {
		t.Errorf("thread algorithms %v", algs)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	nums, err := c.Sort(&imapclient.SortOptions{
		SearchCriteria: &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}},
		SortCriteria:   []imapclient.SortCriterion{{Key: imapclient.SortKeySubject}, {Key: imapclient.SortKeyDate, Reverse: true}},
	}).Wait()
	if err != nil || fmt.Sprint(nums) != "[4 5 2 1 3]" {
		t.Errorf("SORT (SUBJECT REVERSE DATE): %v %v", nums, err)
	}
	uids, err := c.UIDSort(&imapclient.SortOptions{
		SearchCriteria: &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "x.test"}}},
		SortCriteria:   []imapclient.SortCriterion{{Key: imapclient.SortKeySize, Reverse: true}},
	}).Wait()
	if err != nil || fmt.Sprint(uids) != "[6 2 4 3]" {
		t.Errorf("UID SORT (REVERSE SIZE) FROM x.test: %v %v", uids, err)
	}
	if _, err := c.Select("Threads", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	threads, err := c.UIDThread(&imapclient.ThreadOptions{Algorithm: imap.ThreadReferences, SearchCriteria: &imap.SearchCriteria{}}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(threads); got != "[{[1] [{[2 4 9] []} {[6] []}]} {[3] [{[8] []} {[5] []}]} {[7] []}]" {
		t.Errorf("UID THREAD REFERENCES: %s", got)
	}
	threads, err = c.Thread(&imapclient.ThreadOptions{Algorithm: imap.ThreadOrderedSubject, SearchCriteria: &imap.SearchCriteria{}}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(threads); got != "[{[9] [{[1] []} {[2] []} {[6] []} {[4] []}]} {[8] [{[3] []} {[5] []}]} {[7] []}]" {
		t.Errorf("THREAD ORDEREDSUBJECT: %s", got)
	}
}

// Python's imaplib: sort() and thread() as scripts use them.
func TestSortPythonImaplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	e := newEnv(t)
	sortBox(t, e)
	threadBox(t, e)
	host, port, _ := strings.Cut(e.tlsAddr, ":")
	script := `
import imaplib, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL(sys.argv[1], int(sys.argv[2]), ssl_context=ctx)
m.login("alice", "secret")
m.select("INBOX")
print(m.sort("(REVERSE DATE)", "UTF-8", "ALL"))
print(m.sort("(DISPLAYFROM)", "US-ASCII", "NOT", "SUBJECT", "a"))
print(m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL"))
m.select("Threads")
print(m.thread("REFERENCES", "UTF-8", "ALL"))
print(m.uid("THREAD", "ORDEREDSUBJECT", "UTF-8", "SUBJECT", "other"))
try:
    m.sort("(BOGUS)", "UTF-8", "ALL")
except imaplib.IMAP4.error as e:
    print("error", e)
m.logout()
`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	want := strings.Join([]string{
		"('OK', [b'1 5 4 2 3'])",
		"('OK', [b'4 3 1'])",
		"('OK', [b'5 3 6 2 4'])",
		"('OK', [b'(1 (2 4 9)(6))(3 (8)(5))(7)'])",
		"('OK', [b'(8 (3)(5))'])",
		"error SORT command error: BAD [b'Syntax error: unknown sort key BOGUS']",
	}, "\n")
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("python said:\n%s\nwant:\n%s", got, want)
	}
}

func init() {
	decodeArgs["SORT"] = func(p *parser, uid bool) any { return parseSort(p, uid) }
	decodeArgs["THREAD"] = func(p *parser, uid bool) any {
		p.sp()
		alg := p.word()
		p.sp()
		cs := p.astring()
		p.sp()
		c := parseKeys(p, uid, 0)
		p.end()
		return []any{alg, cs, c}
	}
}

// FuzzSortDifferential: SORT and THREAD as imapclient encodes them decode
// to what it was given.
func FuzzSortDifferential(f *testing.F) {
	for i := 0; i < 20; i++ {
		f.Add([]byte(fmt.Sprint("sort", i)))
	}
	keys := []imapclient.SortKey{imapclient.SortKeyArrival, imapclient.SortKeyCc, imapclient.SortKeyDate,
		imapclient.SortKeyFrom, imapclient.SortKeySize, imapclient.SortKeySubject, imapclient.SortKeyTo}
	f.Fuzz(func(t *testing.T, data []byte) {
		diffServer.once.Do(func() { diffServer.fs = newFakeServer(t) })
		diffServer.mu.Lock()
		defer diffServer.mu.Unlock()
		fs := diffServer.fs
		fs.drain()
		h := fnv.New64a()
		h.Write(data)
		g := gen{rand.New(rand.NewPCG(h.Sum64(), 2))}
		cl := fs.client

		crit := g.criteria(0)
		var sc []imapclient.SortCriterion
		var want []string
		for range 1 + g.n(4) {
			c := imapclient.SortCriterion{Key: keys[g.n(len(keys))], Reverse: g.chance()}
			sc = append(sc, c)
			w := string(c.Key)
			if c.Reverse {
				w = "REVERSE " + w
			}
			want = append(want, w)
		}
		uid := g.chance()
		opts := &imapclient.SortOptions{SearchCriteria: &crit, SortCriteria: sc}
		if uid {
			cl.UIDSort(opts).Wait()
		} else {
			cl.Sort(opts).Wait()
		}
		sa := fs.await(t).args.(sortArgs)
		var got []string
		for _, c := range sa.criteria {
			w := c.Key.String()
			if c.Reverse {
				w = "REVERSE " + w
			}
			got = append(got, w)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") || sa.charset != "UTF-8" || canon(sa.searchArgs.criteria.toIMAP()) != canon(crit) {
			t.Fatalf("SORT:\n got  %q %s %s\n want %q %s", got, sa.charset, canon(sa.searchArgs.criteria.toIMAP()), want, canon(crit))
		}

		alg := []imap.ThreadAlgorithm{imap.ThreadReferences, imap.ThreadOrderedSubject}[g.n(2)]
		cl.Thread(&imapclient.ThreadOptions{Algorithm: alg, SearchCriteria: &crit}).Wait()
		ta := fs.await(t).args.([]any)
		tc := ta[2].(criteria)
		if ta[0] != string(alg) || ta[1] != "UTF-8" || canon(tc.toIMAP()) != canon(crit) {
			t.Fatalf("THREAD: got %v %v %s, want %s %s", ta[0], ta[1], canon(tc.toIMAP()), alg, canon(crit))
		}
	})
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
