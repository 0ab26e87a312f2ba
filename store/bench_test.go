package store_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
)

// bigInbox writes a Maildir whose INBOX holds n messages, named and
// numbered the way Dovecot leaves them: sizes in the names, every message
// in dovecot-uidlist, flags on most.
func bigInbox(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	root := filepath.Join(dir, "big", "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	msg := []byte("From: a@example.org\nSubject: benchmark\n\nbody\n")
	ul, err := os.Create(filepath.Join(root, "dovecot-uidlist"))
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(ul)
	fmt.Fprintf(w, "3 V1700000000 N%d G0123456789abcdef0123456789abcdef\n", n+1)
	flags := []string{"S", "RS", "", "FS", "Sa"}
	for i := 1; i <= n; i++ {
		base := fmt.Sprintf("%d.M%dP4242.host,S=%d,W=%d", 1700000000+i/10, i%1000000, len(msg), len(msg)+4)
		if err := os.WriteFile(filepath.Join(root, "cur", base+":2,"+flags[i%len(flags)]), msg, 0o600); err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(w, "%d :%s\n", i, base)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	ul.Close()
	if err := os.WriteFile(filepath.Join(root, "dovecot-keywords"), []byte("0 $Forwarded\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	// A folder last changed an hour ago, as most are when a server
	// starts: a directory changed within the last moments is read again
	// to be safe, which is not what this measures.
	old := time.Now().Add(-time.Hour)
	for _, sub := range []string{"cur", "new"} {
		if err := os.Chtimes(filepath.Join(root, sub), old, old); err != nil {
			tb.Fatal(err)
		}
	}
	return filepath.Join(dir, "{user}", "Maildir")
}

// openOnce opens the big INBOX in a new Store, as a new process would,
// and returns the heap its index holds.
func openOnce(b *testing.B, tmpl string, n int, measure bool) float64 {
	return openOnceWith(b, store.Options{PathTemplate: tmpl, NoWatch: true}, n, measure, false)
}

// openOnceWith opens the INBOX; whole: and reads it, so that a lazy first
// load takes the whole index in.
func openOnceWith(b *testing.B, opts store.Options, n int, measure, whole bool) float64 {
	ctx := context.Background()
	var before runtime.MemStats
	if measure {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
	}
	s, err := store.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	u, err := s.User("big")
	if err != nil {
		b.Fatal(err)
	}
	m, err := u.Open(ctx, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	if whole {
		m.Read(ctx, func(v *store.View) {})
	}
	if !measure {
		return 0
	}
	b.StopTimer()
	defer b.StartTimer()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	var count int
	m.Read(ctx, func(v *store.View) { count = v.Len() })
	if count != n {
		b.Fatalf("%d messages, want %d", count, n)
	}
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// BenchmarkOpenNeverIndexed opens a 100,000-message INBOX that Letterbox
// never saw (a Dovecot Maildir taken over): dovecot-uidlist and a listing
// of cur/ and new/, then the change log written. It reports the heap the
// index holds and the log's size on disk, per message.
func BenchmarkOpenNeverIndexed(b *testing.B) {
	const n = 100000
	tmpl := bigInbox(b, n)
	logPath := filepath.Join(filepath.Dir(tmpl), "..", "big", "Maildir", "letterbox-log")
	b.ResetTimer()
	var perMsg float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.Remove(logPath)
		b.StartTimer()
		if pm := openOnce(b, tmpl, n, i == 0); i == 0 {
			perMsg = pm
		}
	}
	b.StopTimer()
	fi, err := os.Stat(logPath)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(perMsg, "heap-bytes/msg")
	b.ReportMetric(float64(fi.Size())/n, "log-bytes/msg")
}

// BenchmarkOpenWithLog opens the same INBOX in a new Store once its log
// exists, after a restart: "first-look" is the lazy first load (what
// SELECT waits for), "whole" that and the whole index taken in (what the
// first FETCH waits for), "eager" the whole index at once (no lazy load).
// Nothing is listed. heap-bytes/msg is what the index holds then.
func BenchmarkOpenWithLog(b *testing.B) {
	const n = 100000
	tmpl := bigInbox(b, n)
	openOnce(b, tmpl, n, false)
	for _, bc := range []struct {
		name    string
		lazyMin int
		whole   bool
	}{{"first-look", 0, false}, {"whole", 0, true}, {"eager", -1, false}} {
		b.Run(bc.name, func(b *testing.B) {
			opts := store.Options{PathTemplate: tmpl, NoWatch: true, LazyLoadMin: bc.lazyMin}
			perMsg := openOnceWith(b, opts, n, true, bc.whole)
			b.ResetTimer()
			for b.Loop() {
				openOnceWith(b, opts, n, false, bc.whole)
			}
			b.ReportMetric(perMsg, "heap-bytes/msg")
		})
	}
}

// openBig opens a big INBOX in a Store that watches with inotify, as a
// server runs.
func openBig(b *testing.B, n int) *store.Mailbox {
	s, err := store.Open(store.Options{PathTemplate: bigInbox(b, n)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	u, err := s.User("big")
	if err != nil {
		b.Fatal(err)
	}
	m, err := u.Open(context.Background(), "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkAppend appends to folders of 1,000 and 100,000 messages: the
// cost must not grow with the folder (lines are added to dovecot-uidlist,
// one record to the log).
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			m := openBig(b, n)
			ctx := context.Background()
			msg := "From: a@example.org\nSubject: append\n\nbody\n"
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Append(ctx, strings.NewReader(msg), store.AppendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSetFlags is one STORE of one message in a 100,000-message
// folder: a rename and one log record under the lock.
func BenchmarkSetFlags(b *testing.B) {
	m := openBig(b, 100000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		op := store.FlagsAdd
		if i%2 == 1 {
			op = store.FlagsRemove
		}
		if _, err := m.SetFlags(ctx, []uint32{uint32(i%100000 + 1)}, op, store.FlagFlagged, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadUnchanged is the cost every command pays before it reads a
// big mailbox that did not change: three stats (log, cur/, new/).
func BenchmarkReadUnchanged(b *testing.B) {
	m := openBig(b, 100000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Read(ctx, func(v *store.View) { _ = v.Len() })
	}
}
