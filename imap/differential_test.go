package imap

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// FuzzDifferential: commands encoded by go-imap's imapclient decode, in
// our decoder, to the values imapclient was given. The values come from a
// generator seeded by the fuzz input.

// fakeServer reads commands with our decoder over a pipe, hands the
// decoded commands over and answers every command OK.
type fakeServer struct {
	client *imapclient.Client
	got    chan decoded
	errs   chan error
}

func newFakeServer(t testing.TB) *fakeServer {
	srvConn, cliConn := net.Pipe()
	fs := &fakeServer{got: make(chan decoded, 1), errs: make(chan error, 1)}
	c := newConn(decodeServer, srvConn, netip.Addr{}, 0)
	go func() {
		c.out.writeString("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ ESEARCH SEARCHRES LIST-EXTENDED LIST-STATUS " +
			"SPECIAL-USE STATUS=SIZE BINARY APPENDLIMIT=99999999 QUOTA QUOTA=RES-STORAGE MOVE UIDPLUS] hi\r\n")
		c.out.flush()
		for {
			seg, err := c.readLine(1<<20, time.Now().Add(time.Hour))
			if err != nil {
				return
			}
			p := &parser{c: c, budget: 1 << 20}
			p.setLine(seg)
			d, err := decodeFrom(p)
			if d.name == "CAPABILITY" {
				// imapclient asks after LOGIN; not compared.
				c.out.writeString("* CAPABILITY IMAP4rev1 LITERAL+\r\n" + d.tag + " OK done\r\n")
				c.out.flush()
				continue
			}
			tag := d.tag
			if tag == "" {
				tag = "*"
			}
			if err != nil {
				fs.errs <- fmt.Errorf("%q: %w", seg, err)
				c.out.writeString(tag + " BAD decode failed\r\n")
			} else {
				fs.got <- d
				c.out.writeString(tag + " OK done\r\n")
			}
			c.out.flush()
		}
	}()
	cl := imapclient.New(cliConn, nil)
	if err := cl.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	fs.client = cl
	return fs
}

// decodeFrom decodes a command whose first line is in p.
func decodeFrom(p *parser) (d decoded, err error) {
	defer func() {
		if v := recover(); v != nil {
			switch e := v.(type) {
			case *syntaxError:
				err = e
			case *literalRefused:
				err = e
			case *ioError:
				err = e
			default:
				err = fmt.Errorf("panic: %v", v)
			}
		}
	}()
	d.tag = p.tag()
	p.sp()
	d.name = p.word()
	uid := false
	if d.name == "UID" {
		p.sp()
		d.name = "UID " + p.word()
		uid = true
	}
	if d.name == "CAPABILITY" {
		return d, nil
	}
	fn, ok := decodeArgs[strings.TrimPrefix(d.name, "UID ")]
	if !ok {
		return d, fmt.Errorf("no decoder for %s", d.name)
	}
	d.args = fn(p, uid)
	return d, nil
}

// drain drops what a failed iteration left.
func (fs *fakeServer) drain() {
	for {
		select {
		case <-fs.got:
		case <-fs.errs:
		default:
			return
		}
	}
}

// await returns the next decoded command.
func (fs *fakeServer) await(t *testing.T) decoded {
	t.Helper()
	select {
	case d := <-fs.got:
		return d
	case err := <-fs.errs:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("no command")
	}
	return decoded{}
}

// gen makes values from a seeded random source.
type gen struct{ r *rand.Rand }

func (g gen) n(k int) int            { return g.r.IntN(k) }
func (g gen) chance() bool           { return g.r.IntN(2) == 0 }
func (g gen) rarely() bool           { return g.r.IntN(5) == 0 }
func (g gen) pick(s []string) string { return s[g.n(len(s))] }

func (g gen) word(alphabet string, max int) string {
	runes := []rune(alphabet)
	var b strings.Builder
	for i, n := 0, 1+g.n(max); i < n; i++ {
		b.WriteRune(runes[g.n(len(runes))])
	}
	return b.String()
}

const atomChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.$&'"

// text is a search or login string: ASCII with specials, sometimes UTF-8
// or line ends (then a literal).
func (g gen) text() string {
	s := g.word(atomChars+` ()"\{}%*]`, 12)
	if g.rarely() {
		s += "ü€"
	}
	if g.rarely() {
		s += "\r\nx"
	}
	return s
}

func (g gen) part() []int {
	var p []int
	for i, n := 0, g.n(4); i < n; i++ {
		p = append(p, 1+g.n(30))
	}
	return p
}

func (g gen) partial() *imap.SectionPartial {
	if !g.rarely() {
		return nil
	}
	return &imap.SectionPartial{Offset: int64(g.n(100000)), Size: int64(1 + g.n(100000))}
}

func (g gen) seqSet() imap.SeqSet {
	var s imap.SeqSet
	for i, n := 0, 1+g.n(3); i < n; i++ {
		a, b := uint32(1+g.n(1<<20)), uint32(1+g.n(1<<20))
		if g.rarely() {
			a = 0 // "*"
		}
		s.AddRange(a, b)
	}
	return s
}

func (g gen) uidSet() imap.UIDSet {
	var s imap.UIDSet
	for _, r := range g.seqSet() {
		s.AddRange(imap.UID(r.Start), imap.UID(r.Stop))
	}
	return s
}

func (g gen) flags() []imap.Flag {
	var out []imap.Flag
	for i, n := 0, g.n(4); i < n; i++ {
		if g.chance() {
			out = append(out, imap.Flag(g.pick([]string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`})))
		} else {
			out = append(out, imap.Flag(g.word("abcXYZ$_-", 8)))
		}
	}
	return out
}

// flags1 is one flag.
func (g gen) flags1() imap.Flag {
	for {
		if f := g.flags(); len(f) > 0 {
			return f[0]
		}
	}
}

func (g gen) fetchOptions() *imap.FetchOptions {
	o := &imap.FetchOptions{
		Envelope: g.chance(), Flags: g.chance(), InternalDate: g.chance(), RFC822Size: g.chance(), UID: g.rarely(),
		ModSeq: g.rarely(),
	}
	if g.rarely() {
		o.ChangedSince = g.modSeq()
	}
	if g.rarely() {
		o.BodyStructure = &imap.FetchItemBodyStructure{Extended: g.chance()}
	}
	for i, n := 0, g.n(3); i < n; i++ {
		bs := &imap.FetchItemBodySection{Part: g.part(), Peek: g.chance(), Partial: g.partial()}
		switch g.n(5) {
		case 1:
			bs.Specifier = imap.PartSpecifierHeader
		case 2:
			bs.Specifier = imap.PartSpecifierText
		case 3:
			if len(bs.Part) > 0 {
				bs.Specifier = imap.PartSpecifierMIME
			}
		case 4:
			bs.Specifier = imap.PartSpecifierHeader
			var names []string
			for j, m := 0, 1+g.n(4); j < m; j++ {
				names = append(names, g.word(atomChars, 10))
			}
			if g.chance() {
				bs.HeaderFields = names
			} else {
				bs.HeaderFieldsNot = names
			}
		}
		o.BodySection = append(o.BodySection, bs)
	}
	for i, n := 0, g.n(2); i < n; i++ {
		o.BinarySection = append(o.BinarySection, &imap.FetchItemBinarySection{Part: g.part(), Peek: g.chance(), Partial: g.partial()})
	}
	for i, n := 0, g.n(2); i < n; i++ {
		o.BinarySectionSize = append(o.BinarySectionSize, &imap.FetchItemBinarySectionSize{Part: g.part()})
	}
	if !o.Envelope && !o.Flags && !o.InternalDate && !o.RFC822Size && o.BodyStructure == nil && len(o.BodySection) == 0 &&
		len(o.BinarySection) == 0 && len(o.BinarySectionSize) == 0 && !o.ModSeq {
		o.Flags = true // no empty item list
	}
	return o
}

// modSeq is a MODSEQ of any size RFC 7162 allows (63 bits), above 0.
func (g gen) modSeq() uint64 {
	if g.chance() {
		return 1 + uint64(g.r.Int64N(1<<62))
	}
	return 1 + uint64(g.n(1000))
}

func (g gen) date() time.Time {
	return time.Date(1990+g.n(50), time.Month(1+g.n(12)), 1+g.n(28), 0, 0, 0, 0, time.UTC)
}

func (g gen) criteria(depth int) imap.SearchCriteria {
	var c imap.SearchCriteria
	if g.rarely() {
		c.SeqNum = append(c.SeqNum, g.seqSet())
	}
	if g.rarely() {
		c.UID = append(c.UID, g.uidSet())
	}
	if g.rarely() {
		c.Since = g.date()
	}
	if g.rarely() {
		c.Before = g.date()
	}
	if g.rarely() {
		c.SentSince = g.date()
		if g.chance() {
			c.SentBefore = c.SentSince.AddDate(0, 0, 1)
		}
	}
	for i, n := 0, g.n(3); i < n; i++ {
		key := g.pick([]string{"From", "To", "Cc", "Bcc", "Subject", "X-Spam", "List-Id"})
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: key, Value: g.text()})
	}
	if g.rarely() {
		c.Body = append(c.Body, g.text())
	}
	if g.rarely() {
		c.Text = append(c.Text, g.text())
	}
	c.Flag = g.flags()
	c.NotFlag = g.flags()
	if g.rarely() {
		c.Larger = int64(1 + g.n(1<<30))
	}
	if g.rarely() {
		c.Smaller = int64(1 + g.n(1<<30))
	}
	if g.rarely() {
		c.ModSeq = &imap.SearchCriteriaModSeq{ModSeq: g.modSeq()}
		if g.chance() {
			c.ModSeq.ModSeq = 0
		}
		if g.chance() {
			c.ModSeq.MetadataName = "/flags/" + string(g.flags1())
			c.ModSeq.MetadataType = imap.SearchCriteriaMetadataType(g.pick([]string{"priv", "shared", "all"}))
		}
	}
	if depth < 2 {
		for i, n := 0, g.n(2); i < n; i++ {
			c.Not = append(c.Not, g.criteria(depth+1))
		}
		if g.rarely() {
			c.Or = append(c.Or, [2]imap.SearchCriteria{g.criteria(depth + 1), g.criteria(depth + 1)})
		}
	}
	return c
}

// toIMAP turns our criteria into go-imap's, for the comparison.
func (c *criteria) toIMAP() imap.SearchCriteria {
	out := imap.SearchCriteria{
		Since: c.since, Before: c.before, SentSince: c.sentSince, SentBefore: c.sentBefore,
		Header: c.header, Body: c.body, Text: c.text, Flag: c.flag, NotFlag: c.notFlag,
		Larger: c.larger, Smaller: c.smaller, ModSeq: c.modSeq,
	}
	for _, s := range c.seqSets {
		out.SeqNum = append(out.SeqNum, s.(imap.SeqSet))
	}
	for _, s := range c.uidSets {
		out.UID = append(out.UID, s.(imap.UIDSet))
	}
	for i := range c.not {
		out.Not = append(out.Not, c.not[i].toIMAP())
	}
	for i := range c.or {
		out.Or = append(out.Or, [2]imap.SearchCriteria{c.or[i][0].toIMAP(), c.or[i][1].toIMAP()})
	}
	return out
}

// canon prints a value with nil and empty slices alike and header keys
// in lower case.
func canon(v any) string {
	var b strings.Builder
	var walk func(rv reflect.Value)
	walk = func(rv reflect.Value) {
		switch rv.Kind() {
		case reflect.Pointer, reflect.Interface:
			if rv.IsNil() {
				b.WriteString("nil")
				return
			}
			walk(rv.Elem())
		case reflect.Slice, reflect.Array:
			b.WriteString("[")
			for i := 0; i < rv.Len(); i++ {
				walk(rv.Index(i))
				b.WriteString(",")
			}
			b.WriteString("]")
		case reflect.Struct:
			if t, ok := rv.Interface().(time.Time); ok {
				b.WriteString(t.UTC().Format(time.RFC3339))
				return
			}
			if h, ok := rv.Interface().(imap.SearchCriteriaHeaderField); ok {
				fmt.Fprintf(&b, "%s=%q", strings.ToLower(h.Key), h.Value)
				return
			}
			b.WriteString("{")
			for i := 0; i < rv.NumField(); i++ {
				if !rv.Type().Field(i).IsExported() {
					continue
				}
				b.WriteString(rv.Type().Field(i).Name + ":")
				walk(rv.Field(i))
				b.WriteString(" ")
			}
			b.WriteString("}")
		default:
			fmt.Fprintf(&b, "%v", rv.Interface())
		}
	}
	walk(reflect.ValueOf(v))
	return b.String()
}

var diffServer struct {
	once sync.Once
	fs   *fakeServer
	mu   sync.Mutex
}

func FuzzDifferential(f *testing.F) {
	for i := 0; i < 40; i++ {
		f.Add([]byte(fmt.Sprint("seed", i)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		diffServer.once.Do(func() { diffServer.fs = newFakeServer(t) })
		diffServer.mu.Lock()
		defer diffServer.mu.Unlock()
		fs := diffServer.fs
		fs.drain()
		h := fnv.New64a()
		h.Write(data)
		g := gen{rand.New(rand.NewPCG(h.Sum64(), 1))}
		cl := fs.client

		// FETCH and UID FETCH.
		opts := g.fetchOptions()
		uid := g.chance()
		var set imap.NumSet = g.seqSet()
		if uid {
			set = g.uidSet()
		}
		cl.Fetch(set, opts).Close()
		fa := fs.await(t).args.(fetchArgs)
		want := *opts
		want.UID = want.UID || uid
		if canon(fa.opts) != canon(&want) || fa.set.String() != set.String() {
			t.Fatalf("FETCH:\n got  %s %s\n want %s %s", fa.set, canon(fa.opts), set, canon(&want))
		}

		// SEARCH.
		crit := g.criteria(0)
		cl.Search(&crit, nil).Wait()
		sa := fs.await(t).args.(searchArgs)
		if got := sa.criteria.toIMAP(); canon(got) != canon(crit) {
			t.Fatalf("SEARCH:\n got  %s\n want %s", canon(got), canon(crit))
		}

		// STORE.
		sf := &imap.StoreFlags{Op: imap.StoreFlagsOp(g.n(3)), Silent: g.chance(), Flags: g.flags()}
		if len(sf.Flags) == 0 {
			sf.Flags = []imap.Flag{imap.FlagSeen}
		}
		var sto *imap.StoreOptions
		if g.chance() {
			sto = &imap.StoreOptions{UnchangedSince: g.modSeq()}
		}
		cl.Store(set, sf, sto).Close()
		st := fs.await(t).args.(storeArgs)
		if canon(st.flags) != canon(*sf) || st.set.String() != set.String() || (sto != nil) != st.unchanged ||
			sto != nil && sto.UnchangedSince != st.unchangedSince {
			t.Fatalf("STORE:\n got  %s %d\n want %s %+v", canon(st.flags), st.unchangedSince, canon(*sf), sto)
		}

		// SELECT and EXAMINE, with CONDSTORE.
		sel := &imap.SelectOptions{ReadOnly: g.chance(), CondStore: g.chance()}
		mbox := g.word(atomChars+"/ äöü€日本", 10)
		cl.Select(mbox, sel).Wait()
		sd := fs.await(t)
		sargs0 := sd.args.([]any)
		if got, _ := decodeMUTF7(sargs0[0].(string)); got != mbox || sargs0[1].(selectParams).condstore != sel.CondStore ||
			(sd.name == "EXAMINE") != sel.ReadOnly {
			t.Fatalf("SELECT:\n got  %s %q %+v\n want %q %+v", sd.name, got, sargs0[1], mbox, sel)
		}

		// LIST, with names in modified UTF-7.
		name := g.word(atomChars+"/ äöü€日本", 10)
		lo := &imap.ListOptions{SelectSubscribed: g.chance(), SelectSpecialUse: g.rarely(),
			ReturnSubscribed: g.chance(), ReturnChildren: g.chance(), ReturnSpecialUse: g.rarely()}
		lo.SelectRecursiveMatch = lo.SelectSubscribed && g.chance()
		if g.chance() {
			lo.ReturnStatus = &imap.StatusOptions{NumMessages: true, UIDNext: g.chance(), Size: g.chance()}
		}
		cl.List("", name+"%", lo).Close()
		la := fs.await(t).args.(listArgs)
		pat, err := decodeMUTF7(la.patterns[0])
		if err != nil || pat != name+"%" || canon(la.opts) != canon(*lo) {
			t.Fatalf("LIST:\n got  %q %s (%v)\n want %q %s", pat, canon(la.opts), err, name+"%", canon(*lo))
		}

		// STATUS.
		so := &imap.StatusOptions{NumMessages: g.chance(), UIDNext: g.chance(), UIDValidity: g.chance(),
			NumUnseen: g.chance(), NumDeleted: g.chance(), Size: g.chance(), AppendLimit: g.chance(), DeletedStorage: g.chance(),
			HighestModSeq: g.chance()}
		if *so == (imap.StatusOptions{}) {
			so.NumMessages = true
		}
		cl.Status(name, so).Wait()
		sargs := fs.await(t).args.([]any)
		if got, _ := decodeMUTF7(sargs[0].(string)); got != name || canon(sargs[1]) != canon(*so) {
			t.Fatalf("STATUS:\n got  %q %s\n want %q %s", got, canon(sargs[1]), name, canon(*so))
		}

		// APPEND with flags and date.
		ao := &imap.AppendOptions{Flags: g.flags()}
		if g.chance() {
			ao.Time = time.Date(2000+g.n(30), time.Month(1+g.n(12)), 1+g.n(28), g.n(24), g.n(60), g.n(60), 0, time.FixedZone("", (g.n(48)-24)*1800))
		}
		body := "Subject: " + g.word(atomChars, 20) + "\r\n\r\nx\r\n"
		ac := cl.Append(name, int64(len(body)), ao)
		ac.Write([]byte(body))
		ac.Close()
		ac.Wait()
		aargs := fs.await(t).args.([]any)
		gotName, _ := decodeMUTF7(aargs[0].(string))
		var gotFlags []imap.Flag
		var gotTime time.Time
		for _, a := range aargs[1 : len(aargs)-1] {
			switch v := a.(type) {
			case []imap.Flag:
				gotFlags = v
			case time.Time:
				gotTime = v
			}
		}
		if gotName != name || canon(gotFlags) != canon(ao.Flags) || !gotTime.Equal(ao.Time) || aargs[len(aargs)-1] != body {
			t.Fatalf("APPEND:\n got  %q %v %v\n want %q %v %v", gotName, gotFlags, gotTime, name, ao.Flags, ao.Time)
		}

		// LOGIN strings.
		user, pass := g.text(), g.text()
		cl.Login(user, pass).Wait()
		la2 := fs.await(t).args.([2]string)
		if la2[0] != user || la2[1] != pass {
			t.Fatalf("LOGIN: got %q, want %q %q", la2, user, pass)
		}
	})
}
