// Command lbload puts load on an IMAP or POP3 server and reports
// throughput and latency per operation, so Letterbox can be measured
// against itself and against Dovecot on the same Maildirs in one run.
//
//	lbload gen -dir DIR -users 20 -messages 2000          # Maildirs + passwd-file
//	lbload imap -addr 127.0.0.1:1993 -tls -conns 20 -users-file DIR/passwd -password pw -duration 20s
//	lbload pop3 -addr 127.0.0.1:1995 -tls -conns 20 -users-file DIR/passwd -password pw -duration 20s
//	lbload flood -addr 127.0.0.1:1110 -conns 1000 -sources 50 -hold 10s -drip 1s
//	lbload ops -addr 127.0.0.1:1993 -tls -user big1 -password pw -repeat 5     # single commands, one big INBOX
//	lbload report -base dovecot RESULT.json...                                  # side-by-side table of -json results
//	lbload idle -addr 127.0.0.1:1993 -tls -user u -password pw -conns 10000 -server-pid PID  # IDLE sessions, delivery fan-out
//
// The IMAP workload is a mail client's: after LOGIN and SELECT INBOX each
// connection loops over listing flags, fetching headers of a window,
// fetching one whole message, flagging one, and NOOP (-mode long); or
// each connection logs in for every mail check (-mode session) or only
// logs in and out (-mode login). The POP3 workload is
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
	"runtime/debug"
	"runtime/pprof"
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
	// lbload shares the machine with the server it measures, so every
	// cycle it spends is one the server does not get. At Go's default
	// GOGC=100 imapclient's per-response allocations kept the collector
	// and the scavenger busy: with 10 long-lived sessions the tool used
	// 1.27 cores and the server 0.54. A heap target eight times the live
	// heap (some 30 MB more RSS) gave the server 1.5 times the operations
	// per second on two cores. A soft memory limit keeps 10,000 IDLE
	// clients (lbload idle) from growing the heap target past 2 GiB. GOGC
	// and GOMEMLIMIT in the environment still decide.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(800)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(2 << 30)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = runGen(os.Args[2:])
	case "imap", "pop3":
		err = runLoad(os.Args[1], os.Args[2:])
	case "flood":
		err = runFlood(os.Args[2:])
	case "ops":
		err = runOps(os.Args[2:])
	case "report":
		err = runReport(os.Args[2:])
	case "idle":
		err = runIdle(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lbload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lbload gen|imap|pop3|flood|ops|report|idle [flags]   (lbload CMD -h for flags)")
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
	fetchSize int    // messages per header window
	mode      string // IMAP: long, session or login
	label     string // server name for -json
	tag       string // run name for -json
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
	if proto == "imap" {
		fs.StringVar(&c.mode, "mode", "long", "IMAP: long (one login per connection, then a client's loop), session (connect, LOGIN, SELECT, newest window's flags and headers, LOGOUT, again) or login (connect, LOGIN, LOGOUT, again)")
	}
	var jsonOut string
	fs.StringVar(&jsonOut, "json", "", "also write the results as JSON to this file (- for stdout instead of the table)")
	fs.StringVar(&c.label, "label", "", "server name recorded in the JSON (lbload report columns)")
	fs.StringVar(&c.tag, "tag", "", "run name recorded in the JSON (lbload report rows)")
	cpuProfile := fs.String("cpuprofile", "", "write lbload's own CPU profile to this file (where the load tool spends its time)")
	fs.Parse(args)
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if c.addr == "" || c.password == "" || (usersFile == "" && user == "") {
		return errors.New("need -addr, -password and -user or -users-file")
	}
	if proto == "imap" && !slices.Contains([]string{"long", "session", "login"}, c.mode) {
		return fmt.Errorf("-mode %q: want long, session or login", c.mode)
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

	rec := newRecorder()
	g := newGate(c.conns)
	var wg sync.WaitGroup
	for i := range c.conns {
		wg.Go(func() {
			arrive := sync.OnceFunc(g.ready.Done)
			defer arrive()
			begin := func() context.Context { arrive(); <-g.started; return g.ctx }
			rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			u := c.users[i%len(c.users)]
			var err error
			switch {
			case proto == "imap" && c.mode == "long":
				err = imapWorker(begin, c, u, rng, rec)
			case proto == "imap":
				err = imapSessionWorker(begin(), c, u, rec)
			default:
				err = pop3Worker(begin(), c, u, rng, rec)
			}
			if err != nil && !g.over() {
				rec.fail(err)
			}
		})
	}
	start, stop := g.open(ctx, c.duration)
	defer stop()
	wg.Wait()
	res := rec.result(proto, c, time.Since(start))
	if jsonOut != "-" {
		res.writeTable(os.Stdout)
	}
	if jsonOut != "" {
		return writeJSON(jsonOut, res)
	}
	return nil
}

// startCPUProfile profiles lbload itself until the returned stop is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// A gate holds the connections at the start line until every one has set
// up (long IMAP sessions: logged in and selected INBOX), so that the timed
// run measures the sessions, not the storm of bcrypt logins before them
// (50 of them take seconds on two cores). Other modes arrive at once.
type gate struct {
	ready   sync.WaitGroup
	started chan struct{}
	ctx     context.Context // the timed run; set before started is closed
}

// setupTimeout bounds the wait at the gate; connections still logging in
// then join the run late.
const setupTimeout = 2 * time.Minute

func newGate(n int) *gate {
	g := &gate{started: make(chan struct{})}
	g.ready.Add(n)
	return g
}

// open waits for every connection (or setupTimeout, or parent's end), then
// starts the timed run of d.
func (g *gate) open(parent context.Context, d time.Duration) (time.Time, context.CancelFunc) {
	all := make(chan struct{})
	go func() { g.ready.Wait(); close(all) }()
	select {
	case <-all:
	case <-parent.Done():
	case <-time.After(setupTimeout):
	}
	var cancel context.CancelFunc
	g.ctx, cancel = context.WithTimeout(parent, d)
	close(g.started)
	return time.Now(), cancel
}

// over reports whether the timed run has ended, so errors it caused (a
// command cut short) are not counted as failures.
func (g *gate) over() bool {
	select {
	case <-g.started:
		return g.ctx.Err() != nil
	default:
		return false
	}
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

// loadResult is the outcome of one imap or pop3 run, as written with -json.
type loadResult struct {
	Kind     string        `json:"kind"` // "imap" or "pop3"
	Label    string        `json:"label,omitempty"`
	Tag      string        `json:"tag,omitempty"`
	Addr     string        `json:"addr"`
	Mode     string        `json:"mode,omitempty"`
	Conns    int           `json:"conns"`
	Users    int           `json:"users"`
	Elapsed  float64       `json:"elapsed_s"`
	Unit     string        `json:"unit"`       // what PerSecond counts
	PerSec   float64       `json:"per_second"` // Unit per second, all connections together
	Errors   int           `json:"errors"`     // failed operations and connections
	Ops      []loadOpStats `json:"ops"`
	Examples []string      `json:"error_examples,omitempty"`
}

type loadOpStats struct {
	Name   string  `json:"name"`
	Count  int     `json:"count"`
	PerSec float64 `json:"per_second"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	Errors int     `json:"errors"`
}

// setupOps are the long IMAP mode's once-per-connection operations, left
// out of its throughput.
var setupOps = []string{"connect+login", "select", "logout"}

func (r *recorder) result(proto string, c loadConfig, elapsed time.Duration) *loadResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &loadResult{Kind: proto, Label: c.label, Tag: c.tag, Addr: c.addr, Mode: c.mode,
		Conns: c.conns, Users: len(c.users), Elapsed: elapsed.Seconds(), Examples: r.sample}
	names := slices.Collect(maps.Keys(r.ops))
	for op := range r.errs {
		if _, ok := r.ops[op]; !ok {
			names = append(names, op)
		}
	}
	slices.Sort(names)
	units := 0
	res.Unit = "session"
	if c.mode == "long" {
		res.Unit = "op"
	}
	for _, op := range names {
		ds := r.ops[op]
		slices.Sort(ds)
		q := func(p float64) float64 {
			if len(ds) == 0 {
				return 0
			}
			return float64(ds[int(p*float64(len(ds)-1))]) / float64(time.Millisecond)
		}
		res.Ops = append(res.Ops, loadOpStats{Name: op, Count: len(ds), PerSec: float64(len(ds)) / elapsed.Seconds(),
			P50: q(.5), P90: q(.9), P99: q(.99), Errors: r.errs[op]})
		res.Errors += r.errs[op]
		if (res.Unit == "op" && !slices.Contains(setupOps, op)) || op == res.Unit {
			units += len(ds)
		}
	}
	res.PerSec = float64(units) / elapsed.Seconds()
	return res
}

func (r *loadResult) writeTable(w io.Writer) {
	mode := ""
	if r.Mode != "" {
		mode = " -mode " + r.Mode
	}
	fmt.Fprintf(w, "%s%s %s: %d connections, %d users, %.1fs: %.1f %ss per second\n", r.Kind, mode, r.Addr, r.Conns, r.Users, r.Elapsed, r.PerSec, r.Unit)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\tper s\tp50 ms\tp90 ms\tp99 ms\terrors\t")
	for _, o := range r.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t\n", o.Name, o.Count, o.PerSec, o.P50, o.P90, o.P99, o.Errors)
	}
	tw.Flush()
	for _, s := range r.Examples {
		fmt.Fprintln(w, "  error:", s)
	}
}
