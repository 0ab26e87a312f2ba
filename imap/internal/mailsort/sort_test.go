package mailsort

import (
	"fmt"
	"strings"
	"testing"
)

func TestSortCriteria(t *testing.T) {
	keys := []Keys{
		/* 1 */ msg(50, "Subject: b", "From: Zed <alice@x.test>", "To: bob@x.test", "Cc: carol@x.test", "Date: "+date(3, 0)),
		/* 2 */ msg(40, "Subject: A", "From: \"adam\" <zed@x.test>", "To: Bob <ALICE@x.test>", "Date: "+date(1, 0)),
		/* 3 */ msg(30, "Subject: Re: b", "From: BOB@x.test", "Date: nonsense"),
		/* 4 */ msg(20, "Subject: ", "To: =?utf-8?q?=C3=A9mile?= <e@x.test>", "Cc: Dave <dave@x.test>", "Date: "+date(2, 0)),
		/* 5 */ msg(10, "Subject: a", "From: alice@x.test", "To: bob@x.test", "Date: "+date(3, 0)),
	}
	for i, size := range []int64{300, 100, 200, 100, 500} {
		keys[i].Size = size
	}
	// Message 3 has no sent date: DATE uses its INTERNALDATE, 30 seconds
	// after the epoch, the earliest of all.
	tests := []struct {
		crit string
		want string
	}{
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
		{"FROM", "4 1 5 3 2"},        // "" < alice = alice < BOB < zed
		{"TO", "3 2 1 5 4"},          // "" < ALICE < bob = bob < e
		{"CC", "2 3 5 1 4"},          // "" < carol < dave
		{"DISPLAYFROM", "4 2 5 3 1"}, // "" < adam < alice@x.test < BOB@x.test < Zed
		{"DISPLAYTO", "3 2 1 5 4"},   // "" < Bob < bob@x.test = bob@x.test < émile
		{"REVERSE DISPLAYTO", "4 1 5 2 3"},
		{"FROM SUBJECT", "4 5 1 3 2"},
		{"FROM REVERSE SIZE", "4 5 1 3 2"},
		{"TO REVERSE ARRIVAL", "3 2 1 5 4"},
		{"TO ARRIVAL", "3 2 5 1 4"},
	}
	for _, tt := range tests {
		var crit []Criterion
		rev := false
		for _, w := range strings.Fields(tt.crit) {
			if w == "REVERSE" {
				rev = true
				continue
			}
			k, ok := ParseSortKey(strings.ToLower(w))
			if !ok {
				t.Fatalf("ParseSortKey(%q) failed", w)
			}
			if k.String() != w {
				t.Fatalf("%v.String() = %q", k, k.String())
			}
			crit = append(crit, Criterion{Key: k, Reverse: rev})
			rev = false
		}
		if got := sortNums(keys, seqNums(len(keys)), crit...); got != tt.want {
			t.Errorf("SORT (%s) = %s, want %s", tt.crit, got, tt.want)
		}
	}
}

func TestSortKeyNames(t *testing.T) {
	if _, ok := ParseSortKey("REVERSE"); ok {
		t.Error("REVERSE is not a sort key")
	}
	if _, ok := ParseSortKey(""); ok {
		t.Error("empty name accepted")
	}
	if s := SortKey(0).String(); s != "UNKNOWN" {
		t.Errorf("SortKey(0) = %s", s)
	}
	if s := SortKey(200).String(); s != "UNKNOWN" {
		t.Errorf("SortKey(200) = %s", s)
	}
	// An unknown key compares everything equal: mailbox order.
	keys := []Keys{{Size: 2}, {Size: 1}}
	if got := fmt.Sprint(Sort(keys, []Criterion{{Key: 99}})); got != "[0 1]" {
		t.Errorf("unknown key sorted %s", got)
	}
	if got := fmt.Sprint(Sort(keys, nil)); got != "[0 1]" {
		t.Errorf("no criteria sorted %s", got)
	}
}

// CompareKeys orders as Sort does, mailbox order breaking its ties.
func TestCompareKeys(t *testing.T) {
	keys := synthMailbox(3000)
	for _, crit := range [][]Criterion{
		{{Key: SortSubject}, {Key: SortDate, Reverse: true}},
		{{Key: SortDisplayFrom, Reverse: true}},
		{{Key: SortTo}, {Key: SortCc}, {Key: SortSize}, {Key: SortArrival, Reverse: true}},
		{{Key: SortFrom}, {Key: SortDisplayTo}},
	} {
		order := Sort(keys, crit)
		for i := 1; i < len(order); i++ {
			a, b := order[i-1], order[i]
			r := CompareKeys(&keys[a], &keys[b], crit)
			if r > 0 || r == 0 && a > b {
				t.Fatalf("%v: %d before %d, CompareKeys %d", crit, a, b, r)
			}
		}
	}
}
