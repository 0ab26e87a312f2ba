package store_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

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
	return filepath.Join(dir, "{user}", "Maildir")
}

// BenchmarkOpenCold opens a 100,000-message INBOX with no state in memory:
// a new Store each time, as after a restart. It reports the heap the open
// index holds per message.
func BenchmarkOpenCold(b *testing.B) {
	const n = 100000
	tmpl := bigInbox(b, n)
	ctx := context.Background()
	b.ResetTimer()
	var perMsg float64
	for i := 0; i < b.N; i++ {
		var before runtime.MemStats
		if i == 0 {
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.StartTimer()
		}
		s, err := store.Open(store.Options{PathTemplate: tmpl, NoWatch: true})
		if err != nil {
			b.Fatal(err)
		}
		u, err := s.User("big")
		if err != nil {
			b.Fatal(err)
		}
		m, err := u.Open(ctx, "INBOX")
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.StopTimer()
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			perMsg = float64(after.HeapAlloc-before.HeapAlloc) / n
			var count int
			m.Read(ctx, func(v *store.View) { count = v.Len() })
			if count != n {
				b.Fatalf("%d messages, want %d", count, n)
			}
			b.StartTimer()
		}
		m.Close()
		s.Close()
	}
	b.ReportMetric(perMsg, "heap-bytes/msg")
}

// BenchmarkReadUnchanged is the cost every command pays before it reads a
// big mailbox that did not change: two stats.
func BenchmarkReadUnchanged(b *testing.B) {
	tmpl := bigInbox(b, 100000)
	s, _ := store.Open(store.Options{PathTemplate: tmpl})
	defer s.Close()
	u, _ := s.User("big")
	ctx := context.Background()
	m, err := u.Open(ctx, "INBOX")
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Read(ctx, func(v *store.View) { _ = v.Len() })
	}
}
