package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// lbload idle: many IMAP sessions of one user IDLE on one mailbox, the way
// phones and desktop clients wait for mail; then messages are appended
// through another session, and the tool times how long each arrival takes
// to reach every IDLE session (its EXISTS). With -server-pid it reads the
// server's memory before and after the sessions connect, so the cost of an
// IDLE session can be stated per connection.

func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	var c loadConfig
	fs.StringVar(&c.addr, "addr", "127.0.0.1:1993", "IMAP server address")
	fs.BoolVar(&c.tls, "tls", false, "implicit TLS")
	user := fs.String("user", "", "user whose sessions IDLE (all on one mailbox)")
	fs.StringVar(&c.password, "password", "", "the user's password")
	mailbox := fs.String("mailbox", "INBOX", "mailbox the sessions IDLE on")
	conns := fs.Int("conns", 1000, "IDLE sessions")
	deliveries := fs.Int("deliveries", 5, "messages appended, one at a time, while they IDLE")
	parallel := fs.Int("parallel", 50, "sessions logging in at once")
	pid := fs.Int("server-pid", 0, "server process to read VmRSS from (/proc/PID/status), 0 for none")
	settle := fs.Duration("settle", time.Second, "wait this long after the logins before reading the server's memory: a Go server collects the garbage of a login storm at its next GC, at the latest 2 minutes later (the runtime's forced GC), so use 150s for the steady state")
	cpuProfile := fs.String("cpuprofile", "", "write lbload's own CPU profile of the deliveries to this file")
	fs.Parse(args)
	if *user == "" {
		return errors.New("idle: -user is required")
	}

	rss0 := readRSS(*pid)
	var sessions []*idleSession
	var mu sync.Mutex
	var failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, *parallel)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := startIdle(c, *user, *mailbox)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			mu.Lock()
			sessions = append(sessions, s)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		fmt.Printf("%d sessions failed to start; first: %v\n", n, firstErr.Load())
	}
	if len(sessions) == 0 {
		return errors.New("idle: no session")
	}
	started := time.Since(start)
	time.Sleep(*settle) // let the server settle what the logins left
	rss1 := readRSS(*pid)
	fmt.Printf("%d sessions IDLE on %s of %s (started in %v)\n", len(sessions), *mailbox, *user, started.Round(time.Millisecond))
	if rss0 > 0 && rss1 > 0 {
		fmt.Printf("server VmRSS %d KiB before, %d KiB with them: %.1f KiB per IDLE session\n",
			rss0, rss1, float64(rss1-rss0)/float64(len(sessions)))
	}

	sender, err := dialClient(c, nil)
	if err != nil {
		return err
	}
	defer sender.Close()
	if err := sender.Login(*user, c.password).Wait(); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	for d := 0; d < *deliveries; d++ {
		msg := fmt.Sprintf("From: lbload@example.org\r\nSubject: idle %d\r\nMessage-ID: <idle-%d-%d@lbload>\r\n\r\nwake up\r\n", d, d, time.Now().UnixNano())
		sent := time.Now()
		cmd := sender.Append(*mailbox, int64(len(msg)), nil)
		cmd.Write([]byte(msg))
		cmd.Close()
		if _, err := cmd.Wait(); err != nil {
			return fmt.Errorf("idle: append: %w", err)
		}
		acked := time.Since(sent)
		var lat []time.Duration
		lost := 0
		for _, s := range sessions {
			select {
			case at := <-s.arrived:
				lat = append(lat, at.Sub(sent))
			case <-time.After(30 * time.Second):
				lost++
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		if len(lat) == 0 {
			return errors.New("idle: no session heard of the delivery")
		}
		q := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1))].Round(100 * time.Microsecond) }
		fmt.Printf("delivery %d (APPEND answered in %v): reached %d sessions, median %v, p90 %v, max %v; %d not within 30s\n",
			d+1, acked.Round(100*time.Microsecond), len(lat), q(0.5), q(0.9), q(1), lost)
		time.Sleep(200 * time.Millisecond)
	}
	for _, s := range sessions {
		s.stop()
	}
	return nil
}

// idleSession is one client in IDLE.
type idleSession struct {
	cl      *imapclient.Client
	idle    *imapclient.IdleCommand
	arrived chan time.Time
}

func startIdle(c loadConfig, user, mailbox string) (*idleSession, error) {
	s := &idleSession{arrived: make(chan time.Time, 64)}
	var err error
	s.cl, err = dialClient(c, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					select {
					case s.arrived <- time.Now():
					default:
					}
				}
			},
		},
	})
	if err != nil {
		return nil, err
	}
	if err := s.cl.Login(user, c.password).Wait(); err != nil {
		s.cl.Close()
		return nil, err
	}
	if _, err := s.cl.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		s.cl.Close()
		return nil, err
	}
	if s.idle, err = s.cl.Idle(); err != nil {
		s.cl.Close()
		return nil, err
	}
	return s, nil
}

func (s *idleSession) stop() {
	s.idle.Close()
	s.cl.Close()
}

func dialClient(c loadConfig, opts *imapclient.Options) (*imapclient.Client, error) {
	conn, err := dial(c)
	if err != nil {
		return nil, err
	}
	return imapclient.New(conn, opts), nil
}

// readRSS returns a process's resident memory in KiB, 0 if unknown.
func readRSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
