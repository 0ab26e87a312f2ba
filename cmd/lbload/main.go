// Command lbload puts load on an IMAP or POP3 server and reports
// throughput and latency per operation, so Letterbox can be measured
// against itself and against Dovecot on the same Maildirs in one run.
//
//	lbload gen -dir DIR -users 20 -messages 2000          # Maildirs + passwd-file
//	lbload imap -addr 127.0.0.1:1993 -tls -conns 20 -users-file DIR/passwd -password pw -duration 20s
//	lbload pop3 -addr 127.0.0.1:1995 -tls -conns 20 -users-file DIR/passwd -password pw -duration 20s
//	lbload flood -addr 127.0.0.1:1110 -conns 1000 -sources 50 -hold 10s -drip 1s
//
// The IMAP workload is a mail client's: after LOGIN and SELECT INBOX each
// connection loops over listing flags, fetching headers of a window,
// fetching one whole message, flagging one, and NOOP. The POP3 workload is
// fetchmail's: whole sessions of USER, PASS, STAT, UIDL, RETR of three
// random messages, QUIT. Timings are per operation; nothing here asserts
// them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/letterbox-mail/letterbox/auth"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = runGen(os.Args[2:])
	case "imap", "pop3":
		err = runLoad(os.Args[1], os.Args[2:])
	case "flood":
		err = runFlood(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lbload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lbload gen|imap|pop3|flood [flags]   (lbload CMD -h for flags)")
	os.Exit(2)
}

// loadConfig is what one load run needs.
type loadConfig struct {
	addr      string
	tls       bool
	conns     int
	duration  time.Duration
	users     []string
	password  string
	fetchSize int // messages per header window
}

func runLoad(proto string, args []string) error {
	fs := flag.NewFlagSet(proto, flag.ExitOnError)
	var c loadConfig
	var usersFile, user string
	fs.StringVar(&c.addr, "addr", "", "server address host:port")
	fs.BoolVar(&c.tls, "tls", false, "implicit TLS (certificates are not verified)")
	fs.IntVar(&c.conns, "conns", 10, "concurrent connections")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long to run")
	fs.StringVar(&usersFile, "users-file", "", "passwd-file whose user names to log in as, round robin")
	fs.StringVar(&user, "user", "", "single user to log in as (instead of -users-file)")
	fs.StringVar(&c.password, "password", "", "password of every user")
	fs.IntVar(&c.fetchSize, "window", 50, "IMAP: messages per header FETCH")
	fs.Parse(args)
	if c.addr == "" || c.password == "" || (usersFile == "" && user == "") {
		return errors.New("need -addr, -password and -user or -users-file")
	}
	if user != "" {
		c.users = []string{user}
	} else {
		var err error
		if c.users, err = readUsers(usersFile); err != nil {
			return err
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, c.duration)
	defer cancel2()

	rec := newRecorder()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range c.conns {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			u := c.users[i%len(c.users)]
			var err error
			if proto == "imap" {
				err = imapWorker(ctx, c, u, rng, rec)
			} else {
				err = pop3Worker(ctx, c, u, rng, rec)
			}
			if err != nil && ctx.Err() == nil {
				rec.fail(err)
			}
		})
	}
	wg.Wait()
	rec.report(os.Stdout, proto, c, time.Since(start))
	return nil
}

// readUsers lists the users of a passwd-file as the server reads it.
func readUsers(path string) ([]string, error) {
	users, err := auth.ListUsers(path)
	if err == nil && len(users) == 0 {
		err = fmt.Errorf("%s lists no users", path)
	}
	return users, err
}

// recorder collects latencies per operation.
type recorder struct {
	mu     sync.Mutex
	ops    map[string][]time.Duration
	errs   map[string]int
	sample []string
}

func newRecorder() *recorder {
	return &recorder{ops: make(map[string][]time.Duration), errs: make(map[string]int)}
}

// time runs one operation and records how long it took.
func (r *recorder) time(op string, fn func() error) error {
	t := time.Now()
	err := fn()
	d := time.Since(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs[op]++
		if len(r.sample) < 5 {
			r.sample = append(r.sample, op+": "+err.Error())
		}
		return err
	}
	r.ops[op] = append(r.ops[op], d)
	return nil
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs["connection"]++
	if len(r.sample) < 5 {
		r.sample = append(r.sample, err.Error())
	}
}

func (r *recorder) report(w io.Writer, proto string, c loadConfig, elapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(w, "%s %s: %d connections, %d users, %v\n", proto, c.addr, c.conns, len(c.users), elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tper s\tp50 ms\tp90 ms\tp99 ms\terrors\t")
	names := slices.Collect(maps.Keys(r.ops))
	for op := range r.errs {
		if _, ok := r.ops[op]; !ok {
			names = append(names, op)
		}
	}
	slices.Sort(names)
	for _, op := range names {
		ds := r.ops[op]
		slices.Sort(ds)
		q := func(p float64) string {
			if len(ds) == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", float64(ds[int(p*float64(len(ds)-1))])/float64(time.Millisecond))
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t\n", op, len(ds), float64(len(ds))/elapsed.Seconds(), q(.5), q(.9), q(.99), r.errs[op])
	}
	tw.Flush()
	for _, s := range r.sample {
		fmt.Fprintln(w, "  error:", s)
	}
}
