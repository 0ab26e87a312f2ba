package imap

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

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
