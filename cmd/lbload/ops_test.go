package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/letterbox-mail/letterbox/auth"
	lbimap "github.com/letterbox-mail/letterbox/imap"
	"github.com/letterbox-mail/letterbox/store"
)

// The tool is tested against a real Letterbox IMAP server on 127.0.0.1,
// serving a Maildir that lbload gen wrote, so a change on either side that
// breaks a measurement fails here instead of printing wrong figures.

const testPassword = "pw"

type testServer struct {
	addr    string
	maildir string // big1's
}

func startServer(t *testing.T, messages int) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{maildir: filepath.Join(dir, "mail", "big1", "Maildir")}
	if err := genMaildir(ts.maildir, messages, 300, rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users")
	h, err := auth.HashPassword(testPassword, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.AddUser(users, "big1", h); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(store.Options{PathTemplate: filepath.Join(dir, "mail", "{user}", "Maildir"), Logger: log, Hostname: "test"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Options{UsersFile: users, Logger: log, FailDelay: -1, ThrottleFailures: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := &lbimap.Server{Store: st, Auth: a, AllowInsecureAuth: true, Logger: log}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(l) })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		wg.Wait()
		st.Close()
	})
	return ts
}

func (ts *testServer) opsConfig() opsConfig {
	return opsConfig{addr: ts.addr, user: "big1", password: testPassword, mailbox: "INBOX", small: "lbload-small", repeat: 2}
}

// client logs in with an independent connection, to check what a run left.
func (ts *testServer) client(t *testing.T) *imapclient.Client {
	t.Helper()
	cl, err := imapclient.DialInsecure(ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if err := cl.Login("big1", testPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	return cl
}

// headerBytes is what BODY[HEADER.FIELDS (headerFields)] of every message
// in a gen Maildir amounts to: the matching lines in CRLF form and the
// blank line ending each header.
func headerBytes(t *testing.T, maildir string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(maildir, "cur", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() && sc.Text() != "" {
			name, _, _ := strings.Cut(sc.Text(), ":")
			for _, h := range headerFields {
				if strings.EqualFold(name, h) {
					n += int64(len(sc.Text()) + 2)
				}
			}
		}
		n += 2
	}
	return n
}

func TestOpsMeasuresEveryOpAndCleansUp(t *testing.T) {
	const messages = 30
	ts := startServer(t, messages)
	res, err := measureOps(ts.opsConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		messages uint32
		bytes    int64
	}{
		"select":       {messages, 0},
		"flags":        {messages, 0},
		"unseen":       {messages / 3, 0}, // gen leaves every third message unseen
		"headers":      {messages, headerBytes(t, ts.maildir)},
		"append":       {messages, 0},
		"append-small": {0, 0},
	}
	if len(res.Ops) != len(want) {
		t.Fatalf("got %d ops, want %d: %+v", len(res.Ops), len(want), res.Ops)
	}
	for _, o := range res.Ops {
		w, ok := want[o.Name]
		if !ok {
			t.Errorf("unexpected op %q", o.Name)
			continue
		}
		if o.Messages != w.messages || o.Bytes != w.bytes {
			t.Errorf("%s: %d messages, %d bytes; want %d, %d", o.Name, o.Messages, o.Bytes, w.messages, w.bytes)
		}
		if len(o.Samples) != 2 || !(o.Min <= o.Median && o.Median <= o.Max) {
			t.Errorf("%s: samples %v, min %v median %v max %v", o.Name, o.Samples, o.Min, o.Median, o.Max)
		}
	}

	cl := ts.client(t)
	st, err := cl.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != messages {
		t.Errorf("INBOX has %d messages after the run, want %d", *st.NumMessages, messages)
	}
	boxes, err := cl.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boxes {
		if b.Mailbox == "lbload-small" {
			t.Error("lbload-small, created by the run, is still there")
		}
	}
}

func TestOpsSubsetAndWarmup(t *testing.T) {
	ts := startServer(t, 10)
	cl := ts.client(t)
	if err := cl.Create("Sent", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		only []string
		keep bool
	}{
		{only: []string{"headers"}},            // needs the SELECT the run no longer times
		{only: []string{"append-small"}},       // needs no SELECT at all
		{only: []string{"append"}, keep: true}, // leaves its 2+1 messages
	} {
		c := ts.opsConfig()
		c.only, c.warmup, c.keep, c.small = tc.only, 1, tc.keep, "Sent"
		res, err := measureOps(c)
		if err != nil {
			t.Fatalf("-only %v: %v", tc.only, err)
		}
		if len(res.Ops) != 1 || res.Ops[0].Name != tc.only[0] || len(res.Ops[0].Samples) != 2 {
			t.Errorf("-only %v: got %+v", tc.only, res.Ops)
		}
	}
	for box, want := range map[string]uint32{"INBOX": 13, "Sent": 0} {
		st, err := cl.Status(box, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if *st.NumMessages != want {
			t.Errorf("%s: %d messages, want %d", box, *st.NumMessages, want)
		}
	}
}

func TestIMAPModes(t *testing.T) {
	ts := startServer(t, 60)
	c := loadConfig{addr: ts.addr, password: testPassword, fetchSize: 50}
	for _, mode := range []string{"session", "login"} {
		c.mode = mode
		rec := newRecorder()
		if err := rec.time("session", func() error { return imapSession(c, "big1", rec) }); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		res := rec.result("imap", c, time.Second)
		if res.Errors != 0 || res.PerSec != 1 || res.Unit != "session" {
			t.Errorf("%s: %+v", mode, res)
		}
		if got := len(rec.ops["fetch headers"]); (mode == "session") != (got == 1) {
			t.Errorf("%s: %d header fetches", mode, got)
		}
	}
	// A long session whose time is up still logs in, selects and logs out.
	c.mode = "long"
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := newRecorder()
	if err := imapWorker(func() context.Context { return ctx }, c, "big1", nil, rec); err != nil {
		t.Fatal(err)
	}
	res := rec.result("imap", c, time.Second)
	if res.Errors != 0 || len(res.Ops) != 3 || res.PerSec != 0 {
		t.Errorf("long: %+v", res)
	}
}

// A long run logs every connection in before the timed part starts, and
// every connection ends with a LOGOUT.
func TestIMAPLongRun(t *testing.T) {
	ts := startServer(t, 20)
	out := filepath.Join(t.TempDir(), "long.json")
	err := runLoad("imap", []string{"-addr", ts.addr, "-user", "big1", "-password", testPassword,
		"-conns", "3", "-duration", "200ms", "-json", out, "-label", "letterbox", "-tag", "load"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res loadResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, o := range res.Ops {
		count[o.Name] = o.Count
	}
	if res.Errors != 0 || res.Label != "letterbox" || res.Mode != "long" || res.Unit != "op" ||
		count["connect+login"] != 3 || count["select"] != 3 || count["logout"] != 3 {
		t.Errorf("%+v", res)
	}
}

func TestReportPoolsRoundsAndDividesByBase(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, v any) string {
		p := filepath.Join(dir, name)
		if err := writeJSON(p, v); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ops := func(label string, samples ...float64) *opsResult {
		return &opsResult{Kind: "ops", Label: label, Tag: "warm",
			Ops: []opStats{{Name: "unseen", Command: "UID SEARCH UNSEEN", Messages: 7, Samples: samples, ClientCPU: samples[0] / 10}}}
	}
	files := []string{
		write("1.json", ops("letterbox", 40, 44)),
		write("2.json", ops("dovecot", 10, 12)),
		write("3.json", ops("dovecot", 8, 10)),
		write("4.json", ops("letterbox", 36, 40)),
		write("5.json", &loadResult{Kind: "imap", Label: "dovecot", Tag: "load", Mode: "long", Conns: 10, Users: 10, Unit: "op", PerSec: 200}),
		write("6.json", &loadResult{Kind: "imap", Label: "letterbox", Tag: "load", Mode: "long", Conns: 10, Users: 10, Unit: "op", PerSec: 300, Errors: 2}),
	}
	rep := newReport()
	for _, f := range files {
		if err := rep.addFile(f); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := rep.write(&out, "dovecot"); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two rows:\n%s", out.String())
	}
	fields := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for i, want := range []string{
		"run measure unit messages dovecot median (min–max) dovecot per round letterbox median (min–max) letterbox per round letterbox/dovecot client cpu ms errors",
		"warm UID SEARCH UNSEEN ms 7 10.0 (8.00–12.0) 11.0 9.00 40.0 (36.0–44.0) 42.0 38.0 4.00× 0.90/3.80 0/0",
		"load imap long, 10 clients, 10 users ops/s 200 (200–200) 200 300 (300–300) 300 1.50× 0/2",
	} {
		if got := fields(lines[i]); got != want {
			t.Errorf("line %d:\n got %s\nwant %s", i, got, want)
		}
	}
	if err := rep.write(&out, "postfix"); err == nil {
		t.Error("-base with an unknown label: no error")
	}
}
