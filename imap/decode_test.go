package imap

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The decoder alone, without a network or a store: the argument parsers
// of the commands run over a command in memory.

// memConn is a net.Conn that reads from a byte slice and keeps what is
// written.
type memConn struct {
	r *bytes.Reader
	w bytes.Buffer
}

func (m *memConn) Read(p []byte) (int, error)       { return m.r.Read(p) }
func (m *memConn) Write(p []byte) (int, error)      { return m.w.Write(p) }
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// decodeServer is a Server with the default limits, for decoding.
var decodeServer = func() *Server {
	s := &Server{}
	s.init()
	return s
}()

// decoded is one decoded command.
type decoded struct {
	tag, name string
	args      any
}

// decodeArgs are the argument decoders of the commands that have their
// own parse function, and simple ones for the rest.
var decodeArgs = map[string]func(p *parser, uid bool) any{
	"FETCH":  func(p *parser, uid bool) any { return parseFetch(p, uid) },
	"SEARCH": func(p *parser, uid bool) any { return parseSearch(p, uid) },
	"STORE":  func(p *parser, uid bool) any { return parseStore(p, uid) },
	"LIST":   func(p *parser, uid bool) any { return parseListArgs(p, false) },
	"LSUB":   func(p *parser, uid bool) any { return parseListArgs(p, true) },
	"STATUS": func(p *parser, uid bool) any {
		p.sp()
		name := p.astring()
		p.sp()
		items := parseStatusItems(p)
		p.end()
		return []any{name, *items}
	},
	"SELECT":  decodeSelect,
	"EXAMINE": decodeSelect,
	"LOGIN": func(p *parser, uid bool) any {
		p.sp()
		u := p.astring()
		p.sp()
		pw := p.astring()
		p.end()
		return [2]string{u, pw}
	},
	"COPY": func(p *parser, uid bool) any {
		p.sp()
		set := p.numSet(uid)
		p.sp()
		name := p.astring()
		p.end()
		return []any{set.String(), name}
	},
	"APPEND": func(p *parser, uid bool) any {
		p.sp()
		name := p.astring()
		p.sp()
		var out []any
		out = append(out, name)
		if p.peek() == '(' {
			out = append(out, p.flagList())
			p.sp()
		}
		if p.peek() == '"' {
			out = append(out, p.dateTime())
			p.sp()
		}
		r := p.literalStream(1<<20, true)
		b, _ := io.ReadAll(r)
		p.finishStream()
		p.end()
		return append(out, string(b))
	},
}

func decodeSelect(p *parser, uid bool) any {
	p.sp()
	name := p.astring()
	var sp selectParams
	if p.maybeSP() {
		sp = parseSelectParams(p)
	}
	p.end()
	return []any{name, sp}
}

// decodeCommand decodes one command from data. Continuation requests go
// to the memConn's output.
func decodeCommand(data []byte) (d decoded, err error) {
	mc := &memConn{r: bytes.NewReader(data)}
	c := newConn(decodeServer, mc, netip.Addr{}, 0)
	seg, err := c.readLine(decodeServer.maxLine(), time.Now().Add(time.Hour))
	if err != nil {
		return d, err
	}
	p := &parser{c: c, budget: decodeServer.maxLine() - len(seg)}
	p.setLine(seg)
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
				panic(v)
			}
		}
	}()
	d.tag = p.tag()
	if d.tag == "" {
		return d, &syntaxError{msg: "invalid tag"}
	}
	p.sp()
	d.name = p.word()
	uid := false
	if d.name == "UID" {
		p.sp()
		d.name = p.word()
		uid = true
	}
	fn, ok := decodeArgs[d.name]
	if !ok {
		return d, errors.New("no decoder")
	}
	d.args = fn(p, uid)
	return d, nil
}

// FuzzDecoder: any bytes decode into a command or a clean error, never a
// panic of another kind, and nothing bigger than the limits is allocated.
func FuzzDecoder(f *testing.F) {
	for _, s := range sessionSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		"a STATUS {5}\r\nINBOX (MESSAGES)\r\n",
		"a LOGIN {3+}\r\nabc \"x\\\\y\"\r\n",
		"a UID COPY 1:*,$ {4+}\r\nTrash\r\n",
		"a APPEND INBOX (\\Seen) \" 1-Jan-2026 00:00:00 -0130\" ~{3+}\r\na\x00b\r\n",
		"a FETCH 1 BODY[HEADER.FIELDS.NOT (A B \"C\" {1}\r\nD)]\r\n",
		"a SEARCH RETURN (PARTIAL -1:-5 COUNT) OLDER 5 SENTON \"1-Feb-2026\"\r\n",
		"a SELECT {5}\r\nINBOX (QRESYNC (7 9223372036854775807 1:3,9,5:6 (1,3:4 2,8:9)) CONDSTORE)\r\n",
		"a SEARCH MODSEQ {12}\r\n/flags/\\Seen shared 0\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := decodeCommand(data)
		if err != nil {
			return
		}
		if d.tag == "" || d.name == "" {
			t.Fatalf("decoded %+v from %q", d, data)
		}
	})
}

func TestDecoderLimits(t *testing.T) {
	// A literal over MaxLiteralSize is refused before a byte of it is
	// read or a continuation request sent.
	data := "a LOGIN {5000}\r\n" + strings.Repeat("x", 5000) + " y\r\n"
	mc := &memConn{r: bytes.NewReader([]byte(data))}
	c := newConn(decodeServer, mc, netip.Addr{}, 0)
	seg, _ := c.readLine(1000, time.Now().Add(time.Hour))
	p := &parser{c: c, budget: 1000}
	p.setLine(seg)
	func() {
		defer func() {
			if _, ok := recover().(*literalRefused); !ok {
				t.Error("not refused")
			}
		}()
		p.tag()
		p.sp()
		p.word()
		p.sp()
		p.astring()
	}()
	if mc.w.Len() != 0 {
		t.Errorf("continuation sent: %q", mc.w.String())
	}
	if c.br.Buffered() > inBufSize {
		t.Error("read too much")
	}
	// A line over the limit is never buffered whole.
	long := "a NOOP " + strings.Repeat("x", 100000) + "\r\n"
	c = newConn(decodeServer, &memConn{r: bytes.NewReader([]byte(long))}, netip.Addr{}, 0)
	if _, err := c.readLine(1000, time.Now().Add(time.Hour)); !errors.Is(err, errLineTooLong) {
		t.Errorf("long line: %v", err)
	}
	if cap(c.lineBuf) > 1000+inBufSize {
		t.Errorf("line buffer grew to %d", cap(c.lineBuf))
	}
}

func BenchmarkDecodeFetch(b *testing.B) {
	cmd := []byte("a12 UID FETCH 1:*,5,7:9 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeCommand(cmd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSearch(b *testing.B) {
	cmd := []byte("a SEARCH RETURN (MIN MAX COUNT) CHARSET UTF-8 OR (FROM bob SUBJECT \"hello world\") NOT (BODY needle) SINCE 1-Jan-2020 UNDELETED UID 1:*\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeCommand(cmd); err != nil {
			b.Fatal(err)
		}
	}
}
