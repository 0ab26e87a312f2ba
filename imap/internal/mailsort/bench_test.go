package mailsort

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loop runs f b.N times and reports, besides wall time, the CPU time the
// process spent per run: the build machine is shared, and CPU time is
// what stays comparable when other work competes for the cores.
func loop(b *testing.B, f func()) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// synthMailbox makes n messages shaped like a busy mailing-list folder:
// about a third start a thread, the rest reply to a recent message with
// References the way MUAs write them (the parent's, capped, plus the
// parent), some to a parent that is not in the folder; 2 % have no Date;
// 5 % sit out of date order, as after moves between folders.
func synthMailbox(n int) []Keys {
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]Keys, n)
	topics := 0
	for i := range keys {
		k := &keys[i]
		k.MessageID = fmt.Sprintf("%d.%d@bench.example", i, r.IntN(1000))
		k.Arrival = 1_600_000_000 + int64(i)*60 + int64(r.IntN(60))
		k.Sent, k.HasSent = k.Arrival-int64(r.IntN(3600)), r.IntN(50) != 0
		k.Size = int64(1000 + r.IntN(100_000))
		user := r.IntN(2000)
		k.From = fmt.Sprintf("user%d", user)
		k.DisplayFrom = fmt.Sprintf("User %d Name", user)
		k.To, k.DisplayTo = "list", "The List"
		if i%7 == 0 {
			k.Cc = fmt.Sprintf("user%d", r.IntN(2000))
		}
		if i == 0 || r.IntN(3) == 0 {
			topics++
			k.Subject = fmt.Sprintf("Topic number %d about things", topics)
			continue
		}
		p := &keys[max(0, i-1-r.IntN(min(i, 500)))]
		k.Subject, k.ReplyOrFwd = p.Subject, true
		refs := append([]string(nil), p.References...)
		if len(refs) > 20 {
			refs = refs[len(refs)-20:]
		}
		if r.IntN(10) == 0 {
			refs = append(refs, fmt.Sprintf("missing%d@elsewhere.example", r.IntN(n)))
		} else {
			refs = append(refs, p.MessageID)
		}
		k.References = refs
	}
	for range n / 20 {
		i, j := r.IntN(n), r.IntN(n)
		keys[i], keys[j] = keys[j], keys[i]
	}
	return keys
}

const benchN = 100_000

func BenchmarkSort(b *testing.B) {
	keys := synthMailbox(benchN)
	for _, tc := range []struct {
		name string
		crit []Criterion
	}{
		{"ARRIVAL", []Criterion{{Key: SortArrival}}},
		{"REVERSE_DATE", []Criterion{{Key: SortDate, Reverse: true}}},
		{"SIZE", []Criterion{{Key: SortSize}}},
		{"SUBJECT", []Criterion{{Key: SortSubject}}},
		{"FROM", []Criterion{{Key: SortFrom}}},
		{"DISPLAYFROM", []Criterion{{Key: SortDisplayFrom}}},
		{"TO_CC_DATE", []Criterion{{Key: SortTo}, {Key: SortCc}, {Key: SortDate}}},
		{"SUBJECT_REVERSE_DATE", []Criterion{{Key: SortSubject}, {Key: SortDate, Reverse: true}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			loop(b, func() { Sort(keys, tc.crit) })
		})
	}
}

func BenchmarkThreadReferences(b *testing.B) {
	keys := synthMailbox(benchN)
	loop(b, func() { ThreadReferences(keys) })
}

// A single reply chain 100,000 deep, newest message first: the worst
// shape for loop checks and recursion.
func BenchmarkThreadReferencesDeepChain(b *testing.B) {
	keys := make([]Keys, benchN)
	for i := range keys {
		n := benchN - i
		keys[i] = Keys{MessageID: fmt.Sprintf("%d@chain", n), Sent: int64(n), HasSent: true, Subject: "chain"}
		if n > 1 {
			keys[i].References = []string{fmt.Sprintf("%d@chain", n-1)}
		}
	}
	loop(b, func() { ThreadReferences(keys) })
}

func BenchmarkThreadOrderedSubject(b *testing.B) {
	keys := synthMailbox(benchN)
	loop(b, func() { ThreadOrderedSubject(keys) })
}

func BenchmarkAppendThreads(b *testing.B) {
	keys := synthMailbox(benchN)
	th := ThreadReferences(keys)
	num := func(i int) uint32 { return uint32(i + 1) }
	buf := AppendThreads(nil, th, num)
	b.SetBytes(int64(len(buf)))
	loop(b, func() { buf = AppendThreads(buf[:0], th, num) })
}

// FromHeader is paid once per message when the store fills its cache.
func BenchmarkFromHeader(b *testing.B) {
	h := map[string]string{
		"subject":     "Re: [list] Fwd: =?utf-8?q?R=C3=A9union?= de lundi (fwd)",
		"date":        "Fri, 21 Nov 1997 09:55:06 -0600 (CST)",
		"from":        `"Doe, John" <john.doe@example.com>`,
		"to":          "list@lists.example.org",
		"cc":          "Mary <mary@example.net>, bob@example.com",
		"message-id":  "<1234.5678@mail.example.com>",
		"references":  strings.Repeat("<abcdefgh.12345@mail.example.com>\r\n ", 10),
		"in-reply-to": "<abcdefgh.12345@mail.example.com>",
	}
	get := func(name string) string { return h[strings.ToLower(name)] }
	loop(b, func() { FromHeader(get) })
}

func TestSynthMailbox(t *testing.T) {
	// The benchmark data goes through the same checks as fuzzed data.
	keys := synthMailbox(5000)
	checkThreads(t, ThreadReferences(keys), len(keys))
	checkThreads(t, ThreadOrderedSubject(keys), len(keys))
	crit := []Criterion{{Key: SortSubject}, {Key: SortDate, Reverse: true}}
	checkSort(t, keys, crit, Sort(keys, crit))
}
