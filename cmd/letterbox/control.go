package main

// The control socket lets admin commands talk to the running server. It is
// a unix socket (control.socket, mode 0600: only the server's user and root
// get in) speaking line-based JSON: the client sends one request per line,
// the server answers each with one line, in order. The connection may carry
// any number of requests; it is closed after a minute without one.
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
// report logins (see sessionObserver), so its users can be neither shown
// nor kicked. Unknown request fields are ignored, so clients and servers of
// different versions get along.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// controlRequest is one request line.
type controlRequest struct {
	Cmd  string `json:"cmd"`
	User string `json:"user,omitempty"`
}

// controlResponse is one answer line; the fields beyond ok and error
// depend on the command.
type controlResponse struct {
	OK         bool          `json:"ok"`
	Error      string        `json:"error,omitempty"`
	Sessions   []sessionInfo `json:"sessions,omitempty"`
	Kicked     *int          `json:"kicked,omitempty"`
	Unreported []string      `json:"unreported,omitempty"`
}

// Limits of the control socket.
const (
	controlMaxLine     = 64 << 10
	controlIdleTimeout = time.Minute
)

type controlServer struct {
	reg *connRegistry
	log *slog.Logger

	mu     sync.Mutex
	ls     map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newControlServer(reg *connRegistry, log *slog.Logger) *controlServer {
	return &controlServer{reg: reg, log: log, ls: make(map[net.Listener]struct{}), conns: make(map[net.Conn]struct{})}
}

var errControlClosed = errors.New("control: server closed")

// Serve answers requests on l until Close.
func (s *controlServer) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return errControlClosed
	}
	s.ls[l] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return errControlClosed
			}
			// EMFILE and the like: wait for descriptors to free up.
			var temp interface{ Temporary() bool }
			if errors.As(err, &temp) && temp.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("control: accept", "err", err, "retry_in", delay)
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
			return errControlClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(c)
	}
}

// Close closes the listeners and every connection, and waits for their
// goroutines.
func (s *controlServer) Close() error {
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

func (s *controlServer) handle(c net.Conn) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("control: panic", "panic", fmt.Sprint(r))
		}
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 4096), controlMaxLine)
	enc := json.NewEncoder(c)
	for {
		c.SetDeadline(time.Now().Add(controlIdleTimeout))
		if !sc.Scan() {
			if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
				enc.Encode(controlResponse{Error: "request line too long"})
			}
			return
		}
		var req controlRequest
		var resp controlResponse
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp = controlResponse{Error: "bad request: want one JSON object per line"}
		} else {
			resp = s.do(req)
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
	}
}

func (s *controlServer) do(req controlRequest) controlResponse {
	switch req.Cmd {
	case "who":
		return controlResponse{OK: true, Sessions: s.reg.sessions(), Unreported: s.reg.unreported()}
	case "kick":
		if req.User == "" {
			return controlResponse{Error: "kick: user missing"}
		}
		unreported := s.reg.unreported() // before the kick closes connections
		n := s.reg.kick(req.User)
		s.log.Info("control: kicked user", "user", req.User, "sessions", n)
		return controlResponse{OK: true, Kicked: &n, Unreported: unreported}
	default:
		return controlResponse{Error: fmt.Sprintf("unknown command %q", req.Cmd)}
	}
}

// controlCall sends one request to the control socket at path and decodes
// the answer. An answer with ok false is returned as an error.
func controlCall(path string, req controlRequest) (*controlResponse, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, err
	}
	var resp controlResponse
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if !resp.OK {
		return nil, fmt.Errorf("server: %s", resp.Error)
	}
	return &resp, nil
}
