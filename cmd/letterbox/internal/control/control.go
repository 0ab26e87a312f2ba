// Package control is the admin socket of a running server, through which
// "letterbox who" and "letterbox kick" reach it. It is a unix socket
// (mode 0600: only the server's user and root get in) speaking line-based
// JSON: the client sends one request per line, the server answers each
// with one line, in order.
//
//	→ {"cmd":"who"}
//	← {"ok":true,"sessions":[{"id":7,"proto":"pop3","user":"alice",
//	   "remote":"192.0.2.7:50123","local":"192.0.2.1:995","implicit_tls":true,
//	   "start":"2026-01-02T03:04:05.123Z","bytes_in":120,"bytes_out":3456}],
//	   "unreported":["imap"]}
//	→ {"cmd":"kick","user":"alice"}
//	← {"ok":true,"kicked":2,"unreported":["imap"]}
//	→ {"cmd":"frobnicate"}
//	← {"ok":false,"error":"unknown command \"frobnicate\""}
//
// "user" is absent for a connection that has not logged in, and for every
// connection of a protocol listed in "unreported": its server does not
// report logins, so its users can be neither shown nor kicked. Unknown
// request fields are ignored, so clients and servers of different
// versions get along.
package control

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/connlimit"
	"github.com/letterbox-mail/letterbox/cmd/letterbox/internal/conntrack"
)

// Request is one request line.
type Request struct {
	Cmd  string `json:"cmd"`
	User string `json:"user,omitempty"`
}

// Response is one answer line; the fields beyond OK and Error depend on
// the command.
type Response struct {
	OK         bool                `json:"ok"`
	Error      string              `json:"error,omitempty"`
	Sessions   []conntrack.Session `json:"sessions,omitempty"`
	Kicked     *int                `json:"kicked,omitempty"`
	Unreported []string            `json:"unreported,omitempty"`
}

// Registry is what the server answers from; *conntrack.Registry is one.
type Registry interface {
	Sessions() []conntrack.Session
	Unreported() []string
	Kick(user string) int
}

// Defaults of the Server fields.
const (
	DefaultMaxConnections          = 16
	DefaultMaxConnectionsPerClient = 8
	DefaultCommandTimeout          = time.Minute
	DefaultMaxLineLength           = 64 << 10
)

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("control: server closed")

// Server answers requests. Set the fields, then call Serve; zero values
// mean the documented default.
type Server struct {
	// Registry holds the connections. Required.
	Registry Registry
	// Logger gets kicks and refusals. Default slog.Default().
	Logger *slog.Logger

	// MaxConnections caps simultaneous connections; more are closed at
	// once. Default 16; negative means no cap.
	MaxConnections int
	// MaxConnectionsPerClient caps them per client (the peer's user id).
	// Default 8; negative means no cap.
	MaxConnectionsPerClient int
	// CommandTimeout is how long a connection has, after it opens or
	// after an answer, to send its next request line, whole; then it is
	// closed. Default 1 minute.
	CommandTimeout time.Duration
	// MaxLineLength is the longest request line. Default 64 KiB.
	MaxLineLength int

	once    sync.Once
	limiter *connlimit.Limiter

	mu     sync.Mutex
	ls     map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) init() {
	s.once.Do(func() {
		s.ls = make(map[net.Listener]struct{})
		s.conns = make(map[net.Conn]struct{})
		s.limiter = &connlimit.Limiter{
			Max:       cmp.Or(s.MaxConnections, DefaultMaxConnections),
			PerClient: cmp.Or(s.MaxConnectionsPerClient, DefaultMaxConnectionsPerClient),
			Logger:    s.logger(),
			Refuse: func(c net.Conn, why error) {
				json.NewEncoder(c).Encode(Response{Error: why.Error()})
			},
		}
	})
}

// Serve answers requests on l until Close.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.ls[l] = struct{}{}
	s.mu.Unlock()
	l = s.limiter.Listener(l)
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			// EMFILE and the like: wait for descriptors to free up.
			var temp interface{ Temporary() bool }
			if errors.As(err, &temp) && temp.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger().Warn("control: accept", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

// Close closes the listeners and every connection, and waits for their
// goroutines.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	s.closed = true
	for l := range s.ls {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) handle(c net.Conn) {
	defer func() {
		if r := recover(); r != nil {
			s.logger().Error("control: panic", "panic", fmt.Sprint(r))
		}
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	sc := bufio.NewScanner(c)
	sc.Split(scanWholeLines)
	maxLine := cmp.Or(s.MaxLineLength, DefaultMaxLineLength)
	sc.Buffer(make([]byte, 0, min(4096, maxLine)), maxLine)
	enc := json.NewEncoder(c)
	timeout := cmp.Or(s.CommandTimeout, DefaultCommandTimeout)
	for {
		// One deadline for the wait and the whole line: a client that
		// trickles a request is cut off like a silent one.
		c.SetDeadline(time.Now().Add(timeout))
		if !sc.Scan() {
			if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
				enc.Encode(Response{Error: "request line too long"})
			} else if ne, ok := errors.AsType[net.Error](err); (ok && ne.Timeout()) || errors.Is(err, errPartialLine) {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				enc.Encode(Response{Error: "timeout: no whole request line in time"})
			}
			return
		}
		var req Request
		var resp Response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp = Response{Error: "bad request: want one JSON object per line"}
		} else {
			resp = s.do(req)
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

// errPartialLine: the connection ended (or timed out) in the middle of a
// line.
var errPartialLine = errors.New("control: unfinished request line")

// scanWholeLines is bufio.ScanLines without its last, unterminated line:
// bytes cut off by a timeout are not a request.
func scanWholeLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, bytes.TrimSuffix(data[:i], []byte("\r")), nil
	}
	if atEOF && len(data) > 0 {
		return 0, nil, errPartialLine
	}
	return 0, nil, nil
}

func (s *Server) do(req Request) Response {
	switch req.Cmd {
	case "who":
		return Response{OK: true, Sessions: s.Registry.Sessions(), Unreported: s.Registry.Unreported()}
	case "kick":
		if req.User == "" {
			return Response{Error: "kick: user missing"}
		}
		unreported := s.Registry.Unreported() // before the kick closes connections
		n := s.Registry.Kick(req.User)
		s.logger().Info("control: kicked user", "user", req.User, "sessions", n)
		return Response{OK: true, Kicked: &n, Unreported: unreported}
	default:
		return Response{Error: fmt.Sprintf("unknown command %q", req.Cmd)}
	}
}

// Call sends one request to the control socket at path and decodes the
// answer. An answer with OK false is returned as an error.
func Call(path string, req Request) (*Response, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, err
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if !resp.OK {
		return nil, fmt.Errorf("server: %s", resp.Error)
	}
	return &resp, nil
}
