package imap

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// outFilter follows imapserver's responses as they are written: it finds
// where each response starts and ends (literals included, so the bytes of
// a message body are never taken for a response), tells the input framing
// about continuation requests and tagged replies, and rewrites the few
// lines that imapserver gets wrong for us: CAPABILITY lists, and mailbox
// names in LIST, LSUB and STATUS once UTF-8 is enabled.
type outFilter struct {
	mode    int
	seg     []byte // the start of the current line (all of it in outBuffer)
	tail    []byte // the last bytes of the current line
	litLeft int64  // bytes of a literal still to pass
	cont    bool   // the current line continues a response after a literal
	detect  bool   // the current line may end with a literal announcement
	rewrite int    // what to rewrite in outBuffer mode
	closed  bool   // we said BYE
	urgent  bool   // a line the client waits for was seen: flush now
}

const (
	outStart  = iota // collecting the start of a line to classify it
	outPass          // passing the line through
	outBuffer        // buffering the line to rewrite it
	outDrop          // dropping the line
)

const (
	rwCapsCode    = iota + 1 // "... [CAPABILITY ...] text"
	rwCapsResp               // "* CAPABILITY ..."
	rwNames                  // "* LIST", "* LSUB", "* STATUS" in UTF-8 mode
	rwClientError            // imapserver's SERVERBUG for what was the client's error
)

// libServerBug is what imapserver replies when a command handler fails
// with an error that is not an *imap.Error.
const libServerBug = "[SERVERBUG] Internal server error"

const (
	classifyLen = 256
	maxRewrite  = 64 << 10
	tailLen     = 32
)

// atBoundary reports whether no response is partly written.
func (f *outFilter) atBoundary() bool {
	return f.mode == outStart && len(f.seg) == 0 && f.litLeft == 0 && !f.cont
}

// feed returns what to write for p.
func (f *outFilter) feed(c *wireConn, p []byte) net.Buffers {
	var out net.Buffers
	for len(p) > 0 {
		if f.litLeft > 0 {
			n := int(min(int64(len(p)), f.litLeft))
			out = append(out, p[:n])
			p = p[n:]
			if f.litLeft -= int64(n); f.litLeft == 0 {
				f.cont = true
			}
			continue
		}
		switch f.mode {
		case outStart:
			end := len(p)
			if i := bytes.IndexByte(p, '\n'); i >= 0 {
				end = i + 1
			}
			if room := classifyLen - len(f.seg); end > room && p[end-1] != '\n' {
				end = room
			}
			f.seg = append(f.seg, p[:end]...)
			p = p[end:]
			complete := f.seg[len(f.seg)-1] == '\n'
			if !complete && len(f.seg) < classifyLen {
				continue
			}
			f.classify(c)
			if f.mode == outDrop {
				if complete {
					f.endLine(c)
				} else {
					f.seg = f.seg[:0]
				}
				continue
			}
			if f.mode == outPass {
				out = append(out, bytes.Clone(f.seg))
				f.remember(f.seg)
				f.seg = f.seg[:0]
				if complete {
					f.endLine(c)
				}
			} else if complete {
				f.remember(f.seg)
				out = append(out, f.rewritten(c))
				f.endLine(c)
			}
		case outPass:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				out = append(out, p)
				f.remember(p)
				p = nil
				continue
			}
			out = append(out, p[:i+1])
			f.remember(p[:i+1])
			p = p[i+1:]
			f.endLine(c)
		case outDrop:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				p = nil
				continue
			}
			p = p[i+1:]
			f.endLine(c)
		case outBuffer:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				f.seg = append(f.seg, p...)
				p = nil
				if len(f.seg) > maxRewrite {
					out = append(out, bytes.Clone(f.seg))
					f.remember(f.seg)
					f.seg = f.seg[:0]
					f.mode = outPass
				}
				continue
			}
			f.seg = append(f.seg, p[:i+1]...)
			p = p[i+1:]
			f.remember(f.seg)
			out = append(out, f.rewritten(c))
			f.endLine(c)
		}
	}
	return out
}

func (f *outFilter) remember(b []byte) {
	if len(b) >= tailLen {
		f.tail = append(f.tail[:0], b[len(b)-tailLen:]...)
		return
	}
	f.tail = append(f.tail, b...)
	if len(f.tail) > tailLen {
		f.tail = append(f.tail[:0], f.tail[len(f.tail)-tailLen:]...)
	}
}

// endLine is called at the LF of every line: a literal announcement at
// its end means the response goes on after that many bytes.
func (f *outFilter) endLine(c *wireConn) {
	n, ok := int64(0), false
	if f.detect {
		n, ok = trailingLiteral(f.tail)
	}
	f.mode, f.seg, f.tail, f.detect = outStart, f.seg[:0], f.tail[:0], false
	f.cont = ok
	f.litLeft = n
}

// trailingLiteral finds "{n}\r\n" (or "~{n}") at the end of b.
func trailingLiteral(b []byte) (int64, bool) {
	lit, has, valid := parseLiteral(b)
	if !has || !valid || !lit.sync {
		return 0, false
	}
	return lit.size, true
}

// classify looks at the start of a line and decides what to do with it.
func (f *outFilter) classify(c *wireConn) {
	seg := f.seg
	f.mode, f.detect = outPass, false
	if f.cont {
		f.detect = true
		return
	}
	if seg[0] == '+' {
		f.urgent = true
		c.onContinuation()
		return
	}
	tag, rest, _ := bytes.Cut(seg, []byte(" "))
	word, after, _ := bytes.Cut(rest, []byte(" "))
	word = bytes.TrimRight(word, "\r\n")
	if string(tag) == "*" {
		switch string(word) {
		case "OK", "PREAUTH":
			f.urgent = true // the greeting, or a warning before BYE
			if bytes.HasPrefix(after, []byte("[CAPABILITY ")) {
				f.mode, f.rewrite = outBuffer, rwCapsCode
			}
		case "NO", "BAD", "BYE":
			f.urgent = true
		case "CAPABILITY":
			f.mode, f.rewrite = outBuffer, rwCapsResp
		case "ESEARCH":
			c.mu.Lock()
			if c.saveOnly {
				f.mode = outDrop
			}
			c.mu.Unlock()
		case "LIST", "LSUB", "STATUS":
			f.detect = true
			if c.utf8Names() {
				f.mode, f.rewrite = outBuffer, rwNames
			}
		default:
			f.detect = true
		}
		return
	}
	switch string(word) {
	case "OK", "NO", "BAD":
		f.urgent = true
		if string(word) == "NO" && bytes.HasPrefix(after, []byte(libServerBug)) {
			// imapserver answers this to what it could not parse in a
			// mailbox name, date or set; our own errors say otherwise.
			c.onTagged(string(tag), "BAD")
			f.mode, f.rewrite = outBuffer, rwClientError
			return
		}
		c.onTagged(string(tag), string(word))
		if string(word) == "OK" && bytes.HasPrefix(after, []byte("[CAPABILITY ")) {
			f.mode, f.rewrite = outBuffer, rwCapsCode
		}
	default:
		f.detect = true
	}
}

// rewritten returns the buffered line, rewritten.
func (f *outFilter) rewritten(c *wireConn) []byte {
	line := f.seg
	switch f.rewrite {
	case rwCapsCode:
		i := bytes.Index(line, []byte("[CAPABILITY "))
		j := bytes.IndexByte(line[i:], ']')
		if i >= 0 && j >= 0 {
			var b bytes.Buffer
			b.Write(line[:i])
			b.WriteString("[CAPABILITY " + c.capabilities())
			b.Write(line[i+j:])
			return b.Bytes()
		}
	case rwCapsResp:
		return []byte("* CAPABILITY " + c.capabilities() + "\r\n")
	case rwNames:
		return unescapeNames(line)
	case rwClientError:
		if tag, rest, ok := bytes.Cut(line, []byte(" NO ")); ok && bytes.HasPrefix(rest, []byte(libServerBug)) {
			return append(tag, " BAD [CLIENTBUG] Invalid arguments\r\n"...)
		}
	}
	return bytes.Clone(line)
}

// onContinuation is told of a continuation request: it either accepts the
// literal announced last, or asks for a line that is not a command (a SASL
// response, IDLE's DONE).
func (c *wireConn) onContinuation() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lit.active {
		c.lit.cont = true
	} else {
		c.rawNext = true
	}
}

// onTagged is told of the tagged reply to a command. If imapserver replies
// before it read the whole command, the rest must not be taken for the
// next one: a synchronizing literal it never asked for will not come, but
// any other bytes of the command will and are dropped.
func (c *wireConn) onTagged(tag, status string) {
	c.mu.Lock()
	if tag != c.tag {
		c.mu.Unlock()
		return
	}
	if status == "BAD" {
		c.badCount++
	}
	c.rawNext = false
	if c.inCmd {
		if c.lit.active && c.lit.sync && !c.lit.cont {
			c.lit = literalState{}
			c.inCmd = false
		} else {
			c.discard = true
		}
	}
	name, start := c.name, c.cmdStart
	c.cmdStart = time.Time{}
	c.mu.Unlock()
	c.observe(name, start, status == "OK")
}

// observe tells the Observer that a command finished.
func (c *wireConn) observe(name string, start time.Time, ok bool) {
	if o := c.srv.Observer; o != nil && !start.IsZero() {
		o.Command(c.accepted, name, time.Since(start), ok)
	}
}

// utf8Names reports whether mailbox names are UTF-8 on the wire (RFC 6855
// UTF8=ACCEPT or IMAP4rev2 enabled).
func (c *wireConn) utf8Names() bool {
	c.mu.Lock()
	ic := c.imapConn
	c.mu.Unlock()
	if ic == nil {
		return false
	}
	caps := ic.EnabledCaps()
	return caps.Has(imap.CapUTF8Accept) || caps.Has(imap.CapIMAP4rev2)
}

// authAllowed reports whether LOGIN and AUTHENTICATE may be used.
func (c *wireConn) authAllowed() bool {
	c.mu.Lock()
	isTLS := c.isTLS
	c.mu.Unlock()
	s := c.srv
	return isTLS || s.AllowInsecureAuth || (s.AllowInsecureLoopback && c.ip.IsLoopback())
}

// capabilities is what CAPABILITY says, by state. Before login it names
// no software and no version.
func (c *wireConn) capabilities() string {
	c.mu.Lock()
	authed, isTLS := c.authed, c.isTLS
	c.mu.Unlock()
	if !authed {
		caps := []string{"IMAP4rev1", "IMAP4rev2", "SASL-IR", "LITERAL+"}
		if !isTLS && c.srv.TLSConfig != nil {
			caps = append(caps, "STARTTLS")
		}
		if c.authAllowed() {
			caps = append(caps, "AUTH=PLAIN", "AUTH=LOGIN")
		} else {
			caps = append(caps, "LOGINDISABLED")
		}
		return strings.Join(caps, " ")
	}
	return authenticatedCaps + " APPENDLIMIT=" + strconv.FormatInt(c.srv.appendLimit(), 10)
}

// authenticatedCaps are the capabilities after login: DESIGN.md's list,
// plus UTF8=ACCEPT (RFC 6855), which imapserver implements and ENABLE
// needs advertised.
const authenticatedCaps = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE IDLE UNSELECT NAMESPACE " +
	"UIDPLUS MOVE ESEARCH SEARCHRES LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE " +
	"CHILDREN STATUS=SIZE BINARY UNAUTHENTICATE UTF8=ACCEPT"

// unescapeNames undoes imapserver's "&" → "&-" in the mailbox name of a
// LIST, LSUB or STATUS response once names are UTF-8: it escapes as if
// they were still modified UTF-7 (RFC 3501 §5.1.3), but with UTF8=ACCEPT
// (RFC 6855 §3) and in IMAP4rev2 (RFC 9051 §5.1) "&" is just "&". Names are
// quoted strings or atoms then (a quoted string may hold UTF-8).
func unescapeNames(line []byte) []byte {
	// "* LIST (attrs) delim name ..." / "* LSUB ..." / "* STATUS name (...)"
	i := 2
	word := line[i:]
	if j := bytes.IndexByte(word, ' '); j >= 0 {
		i += j + 1
	} else {
		return bytes.Clone(line)
	}
	if !bytes.HasPrefix(line[2:], []byte("STATUS")) {
		// skip "(attrs) " and the delimiter
		if i < len(line) && line[i] == '(' {
			k := bytes.IndexByte(line[i:], ')')
			if k < 0 {
				return bytes.Clone(line)
			}
			i += k + 1
		}
		if i < len(line) && line[i] == ' ' {
			i++
		}
		switch {
		case bytes.HasPrefix(line[i:], []byte("NIL")):
			i += 3
		case i < len(line) && line[i] == '"':
			i += 3 // our delimiter is always "/"
		}
		if i < len(line) && line[i] == ' ' {
			i++
		}
	}
	start := i
	if start >= len(line) {
		return bytes.Clone(line)
	}
	var end int
	if line[start] == '"' {
		end = start + 1
		for end < len(line) && line[end] != '"' {
			if line[end] == '\\' {
				end++
			}
			end++
		}
		end++
	} else {
		end = start
		for end < len(line) && line[end] != ' ' && line[end] != '\r' && line[end] != '\n' {
			end++
		}
	}
	if end > len(line) {
		end = len(line)
	}
	name := bytes.ReplaceAll(line[start:end], []byte("&-"), []byte("&"))
	out := make([]byte, 0, len(line))
	out = append(out, line[:start]...)
	out = append(out, name...)
	return append(out, line[end:]...)
}
