package mailsort

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The examples of RFC 5256 give only the responses; these tests build
// mailboxes that must produce exactly them, each message going through
// FromHeader like the engine's.

func date(day, hour int) string {
	return time.Date(2000, 3, day, hour, 0, 0, 0, time.UTC).Format(time.RFC1123Z)
}

func sortNums(keys []Keys, nums []uint32, crit ...Criterion) string {
	var out []string
	for _, i := range Sort(keys, crit) {
		out = append(out, fmt.Sprint(nums[i]))
	}
	return strings.Join(out, " ")
}

// RFC 5256 §3, SORT example: "A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994"
// answered "* SORT 2 84 882". The raw subjects would sort 882 2 84, and
// without case folding 2 882 84.
func TestRFC5256SortSubject(t *testing.T) {
	keys := []Keys{
		msg(0, "Subject: Re: Apple"),          // 2
		msg(0, "Subject: [list] banana"),      // 84
		msg(0, "Subject: =?utf-8?q?Cherry?="), // 882
	}
	if got := sortNums(keys, []uint32{2, 84, 882}, Criterion{Key: SortSubject}); got != "2 84 882" {
		t.Fatalf("SORT (SUBJECT) = %s, want 2 84 882", got)
	}
}

// RFC 5256 §3: "A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL" answered
// "* SORT 5 3 4 1 2". 3 and 4 share a base subject and 3 is newer; 1 and 2
// share subject and date, so sequence order decides, unreversed.
func TestRFC5256SortSubjectReverseDate(t *testing.T) {
	keys := []Keys{
		msg(0, "Subject: [fwd: Zoo]", "Date: "+date(1, 9)),    // 1
		msg(0, "Subject: zoo", "Date: "+date(1, 9)),           // 2
		msg(0, "Subject: Re: Meeting", "Date: "+date(3, 9)),   // 3
		msg(0, "Subject: meeting (fwd)", "Date: "+date(2, 9)), // 4
		msg(0, "Subject: Afternoon tea", "Date: "+date(9, 9)), // 5
	}
	got := sortNums(keys, seqNums(5), Criterion{Key: SortSubject}, Criterion{Key: SortDate, Reverse: true})
	if got != "5 3 4 1 2" {
		t.Fatalf("SORT (SUBJECT REVERSE DATE) = %s, want 5 3 4 1 2", got)
	}
}

// RFC 5256 §3: a search matching nothing sorts and threads to nothing.
func TestRFC5256Empty(t *testing.T) {
	if got := Sort(nil, []Criterion{{Key: SortSubject}}); len(got) != 0 {
		t.Fatalf("Sort(nil) = %v", got)
	}
	if got := render(ThreadOrderedSubject(nil), nil); got != "" {
		t.Fatalf("ORDEREDSUBJECT of nothing = %q", got)
	}
	if got := render(ThreadReferences(nil), nil); got != "" {
		t.Fatalf("REFERENCES of nothing = %q", got)
	}
}

const rfc5256OrderedSubject = "(166)(167)(168)(169)(172)(170)(171)(173)(174 (175)(176)(178)(181)(180))" +
	"(179)(177 (183)(182)(188)(184)(185)(186)(187)(189))(190)(191)(192)(193)(194 195)" +
	"(196 (197)(198))(199)(200 202)(201)(203)(204)(205)(206 207)(208)"

// RFC 5256 §3, "A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000". Each
// thread gets its own base subject, written with varying reply artefacts;
// dates rise in the order the response lists the messages.
func TestRFC5256ThreadOrderedSubject(t *testing.T) {
	keys, nums := mailbox(rfc5256OrderedSubjectMailbox(t))
	if got := render(ThreadOrderedSubject(keys), nums); got != rfc5256OrderedSubject {
		t.Fatalf("THREAD ORDEREDSUBJECT =\n%s\nwant\n%s", got, rfc5256OrderedSubject)
	}
}

// rfc5256OrderedSubjectMailbox returns the header lines of messages 166 to
// 208 for TestRFC5256ThreadOrderedSubject.
func rfc5256OrderedSubjectMailbox(t testing.TB) [][]string {
	nums, err := parseThreadData(rfc5256OrderedSubject)
	if err != nil {
		t.Fatal(err)
	}
	// Thread of each message: the root's number.
	threadOf := map[uint32]uint32{}
	for _, th := range topLevel(rfc5256OrderedSubject) {
		f, _ := parseThreadData(th)
		for _, n := range f {
			threadOf[n] = f[0]
		}
	}
	dressing := []string{"%s", "Re: %s", "[list] Re: %s", "Fwd: %s (fwd)", "RE: [fwd: %s]", "re[2]: %s"}
	var msgs [][]string
	for i := range 208 - 166 + 1 {
		n := uint32(166 + i)
		pos := slices.Index(nums, n)
		subject := fmt.Sprintf(dressing[i%len(dressing)], fmt.Sprintf("Thread %d", threadOf[n]))
		msgs = append(msgs, []string{"Subject: " + subject, "Date: " + time.Date(2000, 3, 5, 0, pos, 0, 0, time.UTC).Format(time.RFC1123Z)})
	}
	return msgs
}

// mailbox turns header lines into keys numbered from 166.
func mailbox(msgs [][]string) ([]Keys, []uint32) {
	keys := make([]Keys, len(msgs))
	nums := make([]uint32, len(msgs))
	for i, lines := range msgs {
		keys[i] = msg(0, lines...)
		nums[i] = uint32(166 + i)
	}
	return keys, nums
}

const rfc5256References = "(166)(167)(168)(169)(172)((170)(179))(171)(173)((174)(175)(176)(178)(181)(180))" +
	"((177)(183)(182)(188 (184)(189))(185 186)(187))(190)(191)(192)(193)((194)(195 196))(197 198)" +
	"(199)(200 202)(201)(203)(204)(205 206 207)(208)"

// RFC 5256 §3, "A285 THREAD REFERENCES UTF-8 SINCE 5-MAR-2000". The
// mailbox exercises each step: a dummy for a missing parent kept at the
// top with two children (170, 179) or promoted with one (167), a self
// reference (168), a duplicate Message-ID (169), threads gathered by
// subject into a new dummy (174..., 194/195), two dummies of one subject
// merged (177...), a reply attached by subject alone (198), References
// and In-Reply-To chains (205 206 207).
func TestRFC5256ThreadReferences(t *testing.T) {
	keys, nums := mailbox(rfc5256ReferencesMailbox(t))
	threads := ThreadReferences(keys)
	checkThreads(t, threads, len(keys))
	if got := render(threads, nums); got != rfc5256References {
		t.Fatalf("THREAD REFERENCES =\n%s\nwant\n%s", got, rfc5256References)
	}
}

// rfc5256ReferencesMailbox returns the header lines of messages 166 to 208
// for TestRFC5256ThreadReferences.
func rfc5256ReferencesMailbox(t testing.TB) [][]string {
	nums, err := parseThreadData(rfc5256References)
	if err != nil {
		t.Fatal(err)
	}
	id := func(n int) string { return fmt.Sprintf("<%d@example.org>", n) }
	fields := map[int][]string{
		166: {"Subject: Alpha"},
		167: {"Subject: Re: Beta", "References: <gone@example.org>"},
		168: {"Subject: Gamma", "References: " + id(168)},
		169: {"Subject: Delta", "Message-ID: " + id(166)},
		170: {"Subject: Re: Lost", "In-Reply-To: <lost@example.org>"},
		179: {"Subject: Re: Lost", "References: <lost@example.org>"},
		174: {"Subject: Status report"},
		175: {"Subject: status report"},
		176: {"Subject: [team] Status report"},
		178: {"Subject: Status Report"},
		181: {"Subject: STATUS REPORT"},
		180: {"Subject: Status report "},
		177: {"Subject: Re: Meeting", "References: <m1@example.org>"},
		183: {"Subject: Re: Meeting", "References: <m1@example.org>"},
		182: {"Subject: Re: Meeting", "References: <m1@example.org>"},
		188: {"Subject: Re: Meeting", "References: <m2@example.org>"},
		184: {"Subject: Re: Meeting", "References: <m2@example.org> " + id(188)},
		189: {"Subject: Re: Meeting", "References: <m2@example.org>\r\n " + id(188)},
		185: {"Subject: Re: Meeting", "References: <m2@example.org>"},
		186: {"Subject: Re: Meeting", "In-Reply-To: " + id(185) + " (message from Bob)"},
		187: {"Subject: Re: Meeting", "References: <m2@example.org>"},
		194: {"Subject: Lunch"},
		195: {"Subject: Lunch"},
		196: {"Subject: Re: Lunch", "In-Reply-To: " + id(195)},
		197: {"Subject: Dinner"},
		198: {"Subject: Re: Dinner"},
		202: {"Subject: Re: Epsilon", "References: " + id(200)},
		200: {"Subject: Epsilon"},
		206: {"Subject: Re: Zeta", "In-Reply-To: " + id(205)},
		207: {"Subject: Re: Zeta", "References: " + id(205) + " " + id(206)},
		205: {"Subject: Zeta"},
	}
	var msgs [][]string
	for n := 166; n <= 208; n++ {
		lines := fields[n]
		if lines == nil {
			lines = []string{fmt.Sprintf("Subject: Single %d", n)}
		}
		pos := slices.Index(nums, uint32(n))
		lines = append(lines, "Date: "+time.Date(2000, 3, 5, 0, pos, 0, 0, time.UTC).Format(time.RFC1123Z))
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "Message-ID:") }) {
			lines = append(lines, "Message-ID: "+id(n))
		}
		msgs = append(msgs, lines)
	}
	return msgs
}

// RFC 5256 §4, THREAD response examples: "(2)(3 6 (4 23)(44 7 96))",
// where later messages are parents of earlier ones, and "((3)(5))", two
// siblings under a parent that is not in the mailbox.
func TestRFC5256ThreadResponseExamples(t *testing.T) {
	id := func(n int) string { return fmt.Sprintf("<%d@example.org>", n) }
	nums := []uint32{2, 3, 4, 6, 7, 23, 44, 96}
	fields := map[uint32][]string{
		2:  {"Subject: Other", "Date: " + date(1, 0)},
		3:  {"Subject: Topic", "Date: " + date(2, 0)},
		6:  {"Subject: Re: Topic", "Date: " + date(3, 0), "In-Reply-To: " + id(3)},
		4:  {"Subject: Re: Topic", "Date: " + date(4, 0), "References: " + id(3) + " " + id(6)},
		23: {"Subject: Re: Topic", "Date: " + date(5, 0), "References: " + id(3) + " " + id(6) + " " + id(4)},
		44: {"Subject: Re: Topic", "Date: " + date(6, 0), "References: " + id(6)},
		7:  {"Subject: Re: Topic", "Date: " + date(7, 0), "References: " + id(3) + " " + id(6) + " " + id(44)},
		96: {"Subject: Re: Topic", "Date: " + date(8, 0), "References: " + id(44) + " " + id(7)},
	}
	var keys []Keys
	for _, n := range nums {
		keys = append(keys, msg(0, append(fields[n], "Message-ID: "+id(int(n)))...))
	}
	if got := render(ThreadReferences(keys), nums); got != "(2)(3 6 (4 23)(44 7 96))" {
		t.Fatalf("got %s, want (2)(3 6 (4 23)(44 7 96))", got)
	}

	keys = []Keys{
		msg(0, "Subject: Re: Gone", "Date: "+date(1, 0), "References: <gone@example.org>", "Message-ID: "+id(3)),
		msg(0, "Subject: Re: Gone", "Date: "+date(2, 0), "References: <gone@example.org>", "Message-ID: "+id(5)),
	}
	if got := render(ThreadReferences(keys), []uint32{3, 5}); got != "((3)(5))" {
		t.Fatalf("got %s, want ((3)(5))", got)
	}
}

// topLevel splits THREAD data into its threads.
func topLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			if depth == 0 {
				start = i
			}
			depth++
		case ')':
			depth--
			if depth == 0 {
				out = append(out, s[start:i+1])
			}
		}
	}
	return out
}
