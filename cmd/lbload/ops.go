package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// lbload ops times single IMAP commands on one big mailbox, the figures a
// user feels when opening a 100,000-message INBOX: how long SELECT takes,
// listing every flag, finding unread mail, reading the headers a message
// list shows, and filing a message. It talks to any server, so the same
// run measures Letterbox and Dovecot.

// opsConfig is what one ops run needs.
type opsConfig struct {
	addr, user, password string
	tls                  bool
	mailbox              string // the big mailbox
	small                string // folder for append-small, created if missing
	repeat, warmup       int
	only                 []string // op names; empty means all
	keep                 bool     // leave appended messages in place
	label, tag           string   // recorded in the JSON for lbload report
}

// An opSpec is one operation lbload ops can time.
type opSpec struct {
	name    string
	command string // what goes on the wire
	title   string // a short form for lbload report; command if empty
	run     func(*opsSession) (uint32, int64, error)
}

// opSpecs in the order a run times them: SELECT first, as a client opening
// the folder would; the appends, which change the folder, last.
var opSpecs = []opSpec{
	{"select", "SELECT", "", (*opsSession).selectBox},
	{"flags", "UID FETCH 1:* (FLAGS)", "", (*opsSession).fetchFlags},
	{"unseen", "UID SEARCH UNSEEN", "", (*opsSession).searchUnseen},
	{"headers", "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (" + strings.Join(headerFields, " ") + ")])",
		"UID FETCH 1:* (5 header fields)", (*opsSession).fetchHeaders},
	{"append", "APPEND to the big mailbox", "", (*opsSession).appendBig},
	{"append-small", "APPEND to a small folder", "", (*opsSession).appendSmall},
}

var headerFields = []string{"From", "To", "Subject", "Date", "Message-ID"}

func opNames() []string {
	var names []string
	for _, o := range opSpecs {
		names = append(names, o.name)
	}
	return names
}

func runOps(args []string) error {
	fs := flag.NewFlagSet("ops", flag.ExitOnError)
	var c opsConfig
	var only, jsonOut string
	fs.StringVar(&c.addr, "addr", "", "server address host:port")
	fs.BoolVar(&c.tls, "tls", false, "implicit TLS (certificates are not verified)")
	fs.StringVar(&c.user, "user", "", "user to log in as")
	fs.StringVar(&c.password, "password", "", "the user's password")
	fs.StringVar(&c.mailbox, "mailbox", "INBOX", "the big mailbox")
	fs.StringVar(&c.small, "small-mailbox", "lbload-small", "append-small: folder to append to, created (and deleted afterwards) if missing")
	fs.IntVar(&c.repeat, "repeat", 5, "timed runs of each op; all on one connection, op after op in the order of -only's help")
	fs.IntVar(&c.warmup, "warmup", 1, "untimed runs of each op before its timed ones (0: the first run meets cold caches)")
	fs.StringVar(&only, "only", "", "comma-separated subset of "+strings.Join(opNames(), ","))
	fs.BoolVar(&c.keep, "keep", false, "leave the appended messages in place (default: expunge them at the end)")
	fs.StringVar(&jsonOut, "json", "", "also write the results as JSON to this file (- for stdout instead of the table)")
	fs.StringVar(&c.label, "label", "", "server name recorded in the JSON (lbload report columns)")
	fs.StringVar(&c.tag, "tag", "", "run name recorded in the JSON (lbload report rows), e.g. warm or restart")
	fs.Parse(args)
	if c.addr == "" || c.user == "" || c.password == "" {
		return errors.New("need -addr, -user and -password")
	}
	if c.repeat < 1 || c.warmup < 0 {
		return errors.New("need -repeat ≥ 1 and -warmup ≥ 0")
	}
	if only != "" {
		c.only = strings.Split(only, ",")
		for _, n := range c.only {
			if !slices.Contains(opNames(), n) {
				return fmt.Errorf("-only: unknown op %q (have %s)", n, strings.Join(opNames(), ","))
			}
		}
	}
	res, err := measureOps(c)
	if err != nil {
		return err
	}
	if jsonOut != "-" {
		res.writeTable(os.Stdout)
	}
	if jsonOut != "" {
		return writeJSON(jsonOut, res)
	}
	return nil
}

// opsResult is the outcome of one ops run, as written with -json.
type opsResult struct {
	Kind    string    `json:"kind"` // "ops"
	Label   string    `json:"label,omitempty"`
	Tag     string    `json:"tag,omitempty"`
	Addr    string    `json:"addr"`
	Mailbox string    `json:"mailbox"`
	Start   time.Time `json:"start"`
	Repeat  int       `json:"repeat"`
	Warmup  int       `json:"warmup"`
	Ops     []opStats `json:"ops"`
}

type opStats struct {
	Name    string `json:"name"`
	Command string `json:"command"`
	Title   string `json:"title,omitempty"` // short form of Command
	// Messages is the folder's size (select, append: before the first timed
	// run) or how many messages the answer carried (fetch, search).
	Messages uint32    `json:"messages"`
	Bytes    int64     `json:"bytes,omitempty"` // header bytes fetched
	Samples  []float64 `json:"samples_ms"`
	Min      float64   `json:"min_ms"`
	Median   float64   `json:"median_ms"`
	Max      float64   `json:"max_ms"`
	// ClientCPU is the median CPU time lbload itself spent per run: on a
	// small machine the client shares the cores with the server, and
	// its cost is the floor under every server's figure.
	ClientCPU float64 `json:"client_cpu_ms"`
	cpu       []float64
}

// opsSession is the one connection an ops run uses.
type opsSession struct {
	c          opsConfig
	cl         *imapclient.Client
	appended   imap.UIDSet // in c.mailbox
	smallUIDs  imap.UIDSet // in c.small
	smallMade  bool        // c.small was created by this run
	smallCount uint32      // messages in c.small
}

func measureOps(c opsConfig) (*opsResult, error) {
	specs := opSpecs
	if len(c.only) > 0 {
		specs = slices.DeleteFunc(slices.Clone(opSpecs), func(o opSpec) bool { return !slices.Contains(c.only, o.name) })
	}
	conn, err := dial(loadConfig{addr: c.addr, tls: c.tls})
	if err != nil {
		return nil, err
	}
	s := &opsSession{c: c, cl: imapclient.New(conn, nil)}
	defer s.cl.Close()
	if err := s.cl.Login(c.user, c.password).Wait(); err != nil {
		return nil, fmt.Errorf("LOGIN: %w", err)
	}
	if err := s.setup(specs); err != nil {
		return nil, err
	}
	res := &opsResult{Kind: "ops", Label: c.label, Tag: c.tag, Addr: c.addr, Mailbox: c.mailbox,
		Start: time.Now().UTC(), Repeat: c.repeat, Warmup: c.warmup}
	for _, o := range specs {
		res.Ops = append(res.Ops, opStats{Name: o.name, Command: o.command, Title: o.title})
	}
	// Each op runs all its rounds before the next starts, and the appends
	// come last: an APPEND before a SELECT would make the SELECT measure
	// how the server catches up with a changed folder, not opening it
	// (Dovecot's SELECT of 100,000 messages took about 4× longer so).
	for i, o := range specs {
		st := &res.Ops[i]
		for round := range c.warmup + c.repeat {
			t, cpu := time.Now(), cpuTime()
			n, bytes, err := o.run(s)
			d, cpu := time.Since(t), cpuTime()-cpu
			if err != nil {
				return nil, fmt.Errorf("%s: %w", o.command, err)
			}
			if round < c.warmup {
				continue
			}
			if len(st.Samples) == 0 {
				st.Messages, st.Bytes = n, bytes
			}
			st.Samples = append(st.Samples, float64(d)/float64(time.Millisecond))
			st.cpu = append(st.cpu, float64(cpu)/float64(time.Millisecond))
		}
	}
	for i := range res.Ops {
		st := &res.Ops[i]
		st.Min, st.Median, st.Max = summarize(st.Samples)
		_, st.ClientCPU, _ = summarize(st.cpu)
		if st.Name == "append" {
			st.Command = fmt.Sprintf("APPEND to %s", c.mailbox)
		} else if st.Name == "append-small" {
			st.Command = fmt.Sprintf("APPEND to %s", c.small)
		}
	}
	if err := s.cleanup(); err != nil {
		return nil, fmt.Errorf("cleaning up: %w", err)
	}
	s.cl.Logout().Wait()
	return res, nil
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// summarize returns min, median and max of samples.
func summarize(samples []float64) (lo, med, hi float64) {
	if len(samples) == 0 {
		return 0, 0, 0
	}
	s := slices.Sorted(slices.Values(samples))
	med = s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[0], med, s[len(s)-1]
}

// setup selects the big mailbox when no timed SELECT will, and makes sure
// the small folder exists.
func (s *opsSession) setup(specs []opSpec) error {
	has := func(name string) bool {
		return slices.ContainsFunc(specs, func(o opSpec) bool { return o.name == name })
	}
	if !has("select") && slices.ContainsFunc(specs, func(o opSpec) bool { return o.name != "append-small" }) {
		if _, _, err := s.selectBox(); err != nil {
			return fmt.Errorf("SELECT %s: %w", s.c.mailbox, err)
		}
	}
	if !has("append-small") {
		return nil
	}
	st, err := s.cl.Status(s.c.small, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		if err := s.cl.Create(s.c.small, nil).Wait(); err != nil {
			return fmt.Errorf("CREATE %s: %w", s.c.small, err)
		}
		s.smallMade = true
		return nil
	}
	s.smallCount = *st.NumMessages
	return nil
}

// cleanup takes out what the appends put in, so the next run meets the
// same folder sizes; it needs UIDPLUS (APPENDUID, UID EXPUNGE).
func (s *opsSession) cleanup() error {
	if s.c.keep {
		return nil
	}
	if s.smallMade {
		if err := s.cl.Delete(s.c.small).Wait(); err != nil {
			return err
		}
	} else if len(s.smallUIDs) > 0 {
		if _, err := s.cl.Select(s.c.small, nil).Wait(); err != nil {
			return err
		}
		if err := s.expunge(s.smallUIDs); err != nil {
			return err
		}
	}
	if len(s.appended) > 0 {
		if _, err := s.cl.Select(s.c.mailbox, nil).Wait(); err != nil {
			return err
		}
		return s.expunge(s.appended)
	}
	return nil
}

func (s *opsSession) expunge(uids imap.UIDSet) error {
	flags := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := s.cl.Store(uids, flags, nil).Close(); err != nil {
		return err
	}
	return s.cl.UIDExpunge(uids).Close()
}

func (s *opsSession) selectBox() (uint32, int64, error) {
	data, err := s.cl.Select(s.c.mailbox, nil).Wait()
	if err != nil {
		return 0, 0, err
	}
	return data.NumMessages, 0, nil
}

// allUIDs is 1:*.
var allUIDs = imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}

func (s *opsSession) fetchFlags() (uint32, int64, error) {
	return s.fetch(&imap.FetchOptions{Flags: true})
}

func (s *opsSession) fetchHeaders() (uint32, int64, error) {
	return s.fetch(&imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{
		Specifier: imap.PartSpecifierHeader, HeaderFields: headerFields, Peek: true,
	}}})
}

// fetch runs UID FETCH 1:* and reads the answer as it streams in, counting
// messages and literal bytes, without keeping it.
func (s *opsSession) fetch(opts *imap.FetchOptions) (uint32, int64, error) {
	cmd := s.cl.Fetch(allUIDs, opts)
	var n uint32
	var bytes int64
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		n++
		for item := msg.Next(); item != nil; item = msg.Next() {
			if b, ok := item.(imapclient.FetchItemDataBodySection); ok && b.Literal != nil {
				k, err := io.Copy(io.Discard, b.Literal)
				bytes += k
				if err != nil {
					cmd.Close()
					return n, bytes, err
				}
			}
		}
	}
	return n, bytes, cmd.Close()
}

func (s *opsSession) searchUnseen() (uint32, int64, error) {
	data, err := s.cl.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil {
		return 0, 0, err
	}
	return uint32(len(data.AllUIDs())), 0, nil
}

func (s *opsSession) appendBig() (uint32, int64, error) {
	var size uint32
	if mb := s.cl.Mailbox(); mb != nil && mb.Name == s.c.mailbox {
		size = mb.NumMessages
	}
	uid, err := s.appendTo(s.c.mailbox)
	if uid != 0 {
		s.appended.AddNum(uid)
	}
	return size, 0, err
}

func (s *opsSession) appendSmall() (uint32, int64, error) {
	size := s.smallCount
	uid, err := s.appendTo(s.c.small)
	if err == nil {
		s.smallCount++
	}
	if uid != 0 {
		s.smallUIDs.AddNum(uid)
	}
	return size, 0, err
}

// appendTo files a small, already read message, as a client saving a sent
// mail does.
func (s *opsSession) appendTo(mailbox string) (imap.UID, error) {
	msg := fmt.Sprintf("From: Load <load@example.org>\r\nTo: user@example.org\r\n"+
		"Subject: lbload ops append\r\nDate: %s\r\nMessage-ID: <%d.ops@load.example>\r\n\r\n"+
		"A small message appended by lbload ops.\r\n",
		time.Now().Format(time.RFC1123Z), time.Now().UnixNano())
	cmd := s.cl.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
	if _, err := io.WriteString(cmd, msg); err != nil {
		cmd.Close()
		return 0, err
	}
	if err := cmd.Close(); err != nil {
		return 0, err
	}
	data, err := cmd.Wait()
	if err != nil {
		return 0, err
	}
	return data.UID, nil
}

func (r *opsResult) writeTable(w io.Writer) {
	fmt.Fprintf(w, "ops %s %s: %s, each op %d times after %d untimed, one connection\n", r.Addr, r.Mailbox, r.Start.Format(time.RFC3339), r.Repeat, r.Warmup)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tmessages\tmin ms\tmedian ms\tmax ms\tclient cpu ms\t\tcommand")
	for _, o := range r.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t\t%s\n", o.Name, o.Messages, o.Min, o.Median, o.Max, o.ClientCPU, o.Command)
	}
	tw.Flush()
}
