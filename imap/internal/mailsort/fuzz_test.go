package mailsort

import (
	"cmp"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// Parsers take any bytes a message can hold: never a panic, always UTF-8
// keys, and the shapes their callers rely on.

func FuzzBaseSubject(f *testing.F) {
	for _, s := range []string{
		"", "Re: [list] Fwd: Re: hello (fwd)", "[fwd: [fwd: x]]", "Re[2] : x", "[a][b]",
		"=?UTF-8?B?UmU6IGjDqWxsbw==?=", "=?x?q?a?=", "caf\xe9", "a\r\n\tb", "(fwd)(FWD)", "[fwd:]",
		"=?utf-8?q?=5Bfwd=3A_x=5D?=", "Re:\x00[\x00]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		base, _ := BaseSubject(raw)
		if !utf8.ValidString(base) {
			t.Fatalf("BaseSubject(%q) = %q: not UTF-8", raw, base)
		}
		if strings.TrimSpace(base) != base && strings.Trim(base, " ") != base {
			t.Fatalf("BaseSubject(%q) = %q: surrounding space", raw, base)
		}
		if strings.HasSuffix(strings.ToLower(base), "(fwd)") {
			t.Fatalf("BaseSubject(%q) = %q: trailer left", raw, base)
		}
		// The base subject of a base subject is itself, unless decoding
		// has produced something that decodes again.
		if !strings.Contains(base, "=?") {
			if again, _ := BaseSubject(base); again != base {
				t.Fatalf("BaseSubject(%q) = %q, but of that %q", raw, base, again)
			}
		}
	})
}

func FuzzAddressKeys(f *testing.F) {
	for _, s := range []string{
		"", `"Joe Q. Public" <john.q.public@example.com>`, `A Group:Ed Jones <c@a.test>,joe@where.test;`,
		`Pete(A nice \) chap) <pete(his account)@silly.test(his host)>`, `<@a,@b:user@domain>`,
		`john . doe @ example . com`, `=?utf-8?q?J=C3=B6rg?= <joerg@x.test>`, "J\xf6rg <j@x>", `<`, `"`,
		`(`, `[`, `<"a>b"@c>`, `a@b@c`, `::;;,,<<>>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		mbox, disp := AddrMailboxKey(raw), DisplayKey(raw)
		if !utf8.ValidString(mbox) || !utf8.ValidString(disp) {
			t.Fatalf("%q: keys %q, %q not UTF-8", raw, mbox, disp)
		}
		if mbox != "" && disp == "" {
			t.Fatalf("%q: mailbox %q but no display value (RFC 5957 §3 falls back to it)", raw, mbox)
		}
	})
}

func FuzzMessageIDs(f *testing.F) {
	for _, s := range []string{
		"", "<a@b>", `<"01KF8JCEOCBS0045PS"@xxx.yyy.com>`, "(c) < (c) foo (c) @ (c) bar (c) > (c)",
		"<a@b>,skipped,<c@d>", "<<a@b>", `<"a>b"@c>`, "<a@[1.2.3.4]>", "<a\\>@b>", "<@>", "<a@b", `<"@"@0>`, "<\\\n@0>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ids := MessageIDs(raw)
		for _, id := range ids {
			// The "@" between the parts; a quoted left part can hold
			// one too, so it need not be the first.
			if len(id) < 3 || !strings.Contains(id[1:len(id)-1], "@") || strings.ContainsAny(id, "\r\n") {
				t.Fatalf("MessageIDs(%q) gave invalid %q", raw, id)
			}
		}
		if first := MessageID(raw); (first == "") != (len(ids) == 0) || (first != "" && first != ids[0]) {
			t.Fatalf("MessageID(%q) = %q, MessageIDs %q", raw, first, ids)
		}
		refs := References(raw, raw)
		if len(ids) > 0 && len(refs) != len(ids) {
			t.Fatalf("References(%q) = %q", raw, refs)
		}
	})
}

func FuzzSentDate(f *testing.F) {
	for _, s := range []string{
		"", "Fri, 21 Nov 1997 09:55:06 -0600", "31 Dec 2000 16:01:33 -0800", "1 Jan 49", "Mon Jan  2 15:04:05 2006",
		"2006-01-02T15:04:05Z", "Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", "31 Dec 9999 23:59:59 -9959",
		"1 Jan 0001 00:00:00 +9959", ":", "1-2-3", "- - -",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if d, ok := SentDate(raw); ok && (d.Year() < 0 || d.Year() > 10000) {
			t.Fatalf("SentDate(%q) = %v", raw, d)
		}
	})
}

// fuzzMailbox decodes bytes into a mailbox whose IDs, references,
// subjects and dates collide often: six bytes a message.
func fuzzMailbox(data []byte) []Keys {
	subjects := []string{"", "a", "Re: a", "A (fwd)", "[fwd: a]", "b", "Re: b", "[x] b", "Re:"}
	var keys []Keys
	for len(data) >= 6 && len(keys) < 200 {
		b := data[:6]
		data = data[6:]
		k := Keys{Arrival: int64(b[5] % 7), Size: int64(b[4] % 5)}
		if b[0]%9 != 0 {
			k.MessageID = fmt.Sprintf("%d@f", b[0]%13)
		}
		for i := 0; i < int(b[1]%5); i++ {
			k.References = append(k.References, fmt.Sprintf("%d@f", (b[1]/5+byte(i)*b[2])%17))
		}
		k.Subject, k.ReplyOrFwd = BaseSubject(subjects[int(b[3])%len(subjects)])
		k.From = string(rune('a' + b[4]%3))
		k.DisplayTo = string(rune('A' + b[2]%4))
		if b[5]%3 != 0 {
			k.Sent, k.HasSent = int64(b[5]%11), true
		}
		keys = append(keys, k)
	}
	return keys
}

func FuzzThread(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01\x00\x00\x01\x00\x01\x02\x06\x01\x02\x00\x02\x03\x0b\x01\x06\x01\x03"))
	f.Add([]byte("loops: \x01\x05\x02\x01\x01\x01\x02\x05\x01\x02\x01\x02\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte(strings.Repeat("\x04\x0a\x03\x07\x02\x05", 40)))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys := fuzzMailbox(data)
		nums := seqNums(len(keys))

		th := ThreadReferences(keys)
		checkThreads(t, th, len(keys))
		checkSorted(t, sentDates(keys), th)
		for _, r := range th {
			if r.Msg < 0 && len(r.Children) < 2 {
				t.Fatalf("top-level dummy with %d children", len(r.Children))
			}
			for _, c := range r.Children {
				noDummies(t, c)
			}
		}
		checkWire(t, render(th, nums), len(keys))

		os := ThreadOrderedSubject(keys)
		checkThreads(t, os, len(keys))
		for _, r := range os {
			for _, c := range r.Children {
				if len(c.Children) > 0 || Compare(keys[c.Msg].Subject, keys[r.Msg].Subject) != 0 {
					t.Fatal("ORDEREDSUBJECT child is nested or of another subject")
				}
			}
		}
		checkWire(t, render(os, nums), len(keys))

		var crit []Criterion
		for i, b := range data {
			if i >= 3 {
				break
			}
			crit = append(crit, Criterion{Key: SortKey(b%10 + 1), Reverse: b&0x80 != 0})
		}
		checkSort(t, keys, crit, Sort(keys, crit))
	})
}

func noDummies(t *testing.T, th *Thread) {
	if th.Msg < 0 {
		t.Fatal("dummy below the top level")
	}
	for _, c := range th.Children {
		noDummies(t, c)
	}
}

// checkSorted checks RFC 5256 §3 step 6: every set of siblings in sent
// date order, a dummy sorting as its first child.
func checkSorted(t *testing.T, dates []int64, kids []*Thread) {
	for i := 1; i < len(kids); i++ {
		if dateCmp(dates, sortMsg(kids[i-1]), sortMsg(kids[i])) > 0 {
			t.Fatalf("siblings out of date order: %d before %d", sortMsg(kids[i-1]), sortMsg(kids[i]))
		}
	}
	for _, c := range kids {
		checkSorted(t, dates, c.Children)
	}
}

// checkWire checks that THREAD data follows RFC 5256 §5 and lists each
// message once.
func checkWire(t *testing.T, wire string, n int) {
	got, err := parseThreadData(wire)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, n+1)
	for _, v := range got {
		if v < 1 || int(v) > n || seen[v] {
			t.Fatalf("%s: %d out of range or repeated", wire, v)
		}
		seen[v] = true
	}
	if len(got) != n {
		t.Fatalf("%s lists %d of %d messages", wire, len(got), n)
	}
}

// checkSort checks that order is a permutation sorted by crit, compared
// here with Compare rather than the folded keys Sort uses.
func checkSort(t *testing.T, keys []Keys, crit []Criterion, order []int) {
	seen := make([]bool, len(keys))
	for _, i := range order {
		if i < 0 || i >= len(keys) || seen[i] {
			t.Fatalf("Sort gave %v: not a permutation", order)
		}
		seen[i] = true
	}
	if len(order) != len(keys) {
		t.Fatalf("Sort gave %d of %d", len(order), len(keys))
	}
	for n := 1; n < len(order); n++ {
		a, b := order[n-1], order[n]
		r := 0
		for _, c := range crit {
			r = compareBy(&keys[a], &keys[b], c.Key)
			if c.Reverse {
				r = -r
			}
			if r != 0 {
				break
			}
		}
		if r > 0 || (r == 0 && a > b) {
			t.Fatalf("Sort %v: %d before %d", crit, a, b)
		}
	}
}

func compareBy(a, b *Keys, k SortKey) int {
	switch k {
	case SortArrival:
		return cmp.Compare(a.Arrival, b.Arrival)
	case SortDate:
		return cmp.Compare(a.SentDate(), b.SentDate())
	case SortSize:
		return cmp.Compare(a.Size, b.Size)
	case SortCc:
		return Compare(a.Cc, b.Cc)
	case SortFrom:
		return Compare(a.From, b.From)
	case SortSubject:
		return Compare(a.Subject, b.Subject)
	case SortTo:
		return Compare(a.To, b.To)
	case SortDisplayFrom:
		return Compare(a.DisplayFrom, b.DisplayFrom)
	case SortDisplayTo:
		return Compare(a.DisplayTo, b.DisplayTo)
	}
	return 0
}
