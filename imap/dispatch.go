package imap

import (
	"errors"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// Dispatch: one command at a time, each checked against the states it is
// allowed in, run by one handler that returns an error, and answered by
// respond, the one place that writes tagged replies.

type state uint8

const (
	stateNotAuth state = 1 << iota
	stateAuth
	stateSelected

	anyState   = stateNotAuth | stateAuth | stateSelected
	authStates = stateAuth | stateSelected
)

// command is one command being run.
type command struct {
	tag  string
	name string // upper case; "UID FETCH" for UID commands
	uid  bool
	p    *parser

	// Set by the handler.
	okCode  string // response code of the tagged OK
	okText  string // its text; default "<NAME> completed"
	noPoll  bool   // no updates before the tagged reply
	closed  bool   // the handler ended the connection (BYE written)
	replied bool   // the handler wrote the tagged reply itself

	unknown bool // no such command (or no command name at all)
}

// updatePolicy says which updates of the selected mailbox may follow a
// command (RFC 3501 §7.4.1: no EXPUNGE while responding to FETCH, STORE
// or SEARCH; the UID forms may have them).
type updatePolicy uint8

const (
	pollAll updatePolicy = iota
	pollNoExpunge
)

type cmdSpec struct {
	states state
	fn     func(*session, *command) error
	policy updatePolicy
}

var commands map[string]cmdSpec

func init() {
	commands = map[string]cmdSpec{
		// Any state (RFC 3501 §6.1, RFC 2971 ID).
		"CAPABILITY": {anyState, (*session).cmdCapability, pollAll},
		"NOOP":       {anyState, (*session).cmdNoop, pollAll},
		"LOGOUT":     {anyState, (*session).cmdLogout, pollAll},
		"ID":         {anyState, (*session).cmdID, pollAll},
		// Not authenticated (§6.2).
		"STARTTLS":     {stateNotAuth, (*session).cmdStartTLS, pollAll},
		"LOGIN":        {stateNotAuth, (*session).cmdLogin, pollAll},
		"AUTHENTICATE": {stateNotAuth, (*session).cmdAuthenticate, pollAll},
		// Authenticated (§6.3) and extensions.
		"ENABLE":         {authStates, (*session).cmdEnable, pollAll},
		"SELECT":         {authStates, (*session).cmdSelect, pollAll},
		"EXAMINE":        {authStates, (*session).cmdSelect, pollAll},
		"CREATE":         {authStates, (*session).cmdCreate, pollAll},
		"DELETE":         {authStates, (*session).cmdDelete, pollAll},
		"RENAME":         {authStates, (*session).cmdRename, pollAll},
		"SUBSCRIBE":      {authStates, (*session).cmdSubscribe, pollAll},
		"UNSUBSCRIBE":    {authStates, (*session).cmdUnsubscribe, pollAll},
		"LIST":           {authStates, (*session).cmdList, pollAll},
		"LSUB":           {authStates, (*session).cmdList, pollAll},
		"NAMESPACE":      {authStates, (*session).cmdNamespace, pollAll},
		"STATUS":         {authStates, (*session).cmdStatus, pollAll},
		"APPEND":         {authStates, (*session).cmdAppend, pollAll},
		"IDLE":           {authStates, (*session).cmdIdle, pollAll},
		"UNAUTHENTICATE": {authStates, (*session).cmdUnauthenticate, pollAll},
		"COMPRESS":       {authStates, (*session).cmdCompress, pollAll},
		"GETQUOTA":       {authStates, (*session).cmdGetQuota, pollAll},
		"GETQUOTAROOT":   {authStates, (*session).cmdGetQuotaRoot, pollAll},
		"SETQUOTA":       {authStates, (*session).cmdSetQuota, pollAll},
		"NOTIFY":         {authStates, (*session).cmdNotify, pollAll},
		// Selected (§6.4).
		"CHECK":        {stateSelected, (*session).cmdNoop, pollAll},
		"CLOSE":        {stateSelected, (*session).cmdClose, pollAll},
		"UNSELECT":     {stateSelected, (*session).cmdClose, pollAll},
		"EXPUNGE":      {stateSelected, (*session).cmdExpunge, pollAll},
		"UID EXPUNGE":  {stateSelected, (*session).cmdExpunge, pollAll},
		"SEARCH":       {stateSelected, (*session).cmdSearch, pollNoExpunge},
		"UID SEARCH":   {stateSelected, (*session).cmdSearch, pollAll},
		"FETCH":        {stateSelected, (*session).cmdFetch, pollNoExpunge},
		"UID FETCH":    {stateSelected, (*session).cmdFetch, pollAll},
		"STORE":        {stateSelected, (*session).cmdStore, pollNoExpunge},
		"UID STORE":    {stateSelected, (*session).cmdStore, pollAll},
		"COPY":         {stateSelected, (*session).cmdCopy, pollAll},
		"UID COPY":     {stateSelected, (*session).cmdCopy, pollAll},
		"MOVE":         {stateSelected, (*session).cmdCopy, pollAll},
		"UID MOVE":     {stateSelected, (*session).cmdCopy, pollAll},
		"CANCELUPDATE": {stateSelected, (*session).cmdCancelUpdate, pollAll},
		"SORT":         {stateSelected, (*session).cmdSort, pollNoExpunge},
		"UID SORT":     {stateSelected, (*session).cmdSort, pollAll},
		"THREAD":       {stateSelected, (*session).cmdThread, pollNoExpunge},
		"UID THREAD":   {stateSelected, (*session).cmdThread, pollAll},
	}
}

// serve runs the connection: greeting, then commands until LOGOUT, an
// error, a timeout or Shutdown.
func (c *conn) serve() {
	s := newSession(c)
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("imap: panic", "panic", v, "stack", string(debug.Stack()))
			if h := c.srv.panicHook; h != nil {
				h(v)
			}
		}
		s.close()
		c.close()
		c.srv.forget(c)
		c.srv.wg.Done()
	}()
	c.out.writeString("* OK [CAPABILITY " + s.capabilities() + "] IMAP server ready\r\n")
	if c.out.flush() != nil {
		return
	}
	due := s.notifyPending.Load
	waitSince := time.Now()
	for !s.loggedOut {
		if reason := s.byeReason(); reason != "" {
			c.bye(reason)
			return
		}
		if s.notifyPending.Load() {
			// NOTIFY: what the feeds brought, between commands.
			if s.notifyPass(true) != nil || c.out.flush() != nil {
				return
			}
		}
		timeout := orDefault(c.srv.LoginTimeout, DefaultLoginTimeout)
		if s.state != stateNotAuth {
			timeout = orDefault(c.srv.IdleTimeout, DefaultIdleTimeout)
		}
		// Notifications do not count as activity: the idle timeout runs
		// from the end of the last command.
		switch err := c.waitCommand(time.Until(waitSince.Add(timeout)), due); {
		case err == nil:
		case errors.Is(err, errWoken):
			continue
		case errors.Is(err, errShutdown):
			c.bye("Server shutting down")
			return
		case errors.Is(err, errIdleTimeout):
			c.bye("Autologout; idle for too long")
			return
		default:
			return
		}
		if !s.command() {
			return
		}
		waitSince = time.Now()
	}
}

func (s *session) byeReason() string {
	switch {
	case s.c.stopping.Load():
		return "Server shutting down"
	case s.badCount >= orDefault(s.srv.MaxBadCommands, DefaultMaxBadCommands):
		return "Too many invalid commands"
	}
	return ""
}

// command reads and runs one command; false ends the connection.
func (s *session) command() bool {
	c := s.c
	seg, err := c.readLine(s.srv.maxLine(), c.lineDeadline())
	if err != nil {
		return s.readFailed(err)
	}
	p := &parser{c: c, budget: s.srv.maxLine() - len(seg)}
	p.setLine(seg)
	cmd := &command{p: p}
	start := time.Now()
	err = s.run(cmd)
	var ioe *ioError
	switch {
	case errors.As(err, &ioe):
		return s.readFailed(ioe.err)
	case errors.Is(err, errConnClosed) || cmd.closed:
		s.observe(cmd, start, err == nil)
		return false
	}
	if err != nil && !s.skipRest(p, cmd.name == "APPEND") {
		return false
	}
	if cmd.tag == "" {
		s.badCount++
		c.out.writeString("* BAD Invalid tag\r\n")
		return c.out.flush() == nil
	}
	ok := cmd.replied && err == nil
	if !cmd.replied || err != nil {
		ok = s.respond(cmd, err)
	}
	s.observe(cmd, start, ok)
	if c.out.err != nil {
		return false
	}
	if cmd.unknown && s.state == stateNotAuth {
		// One unknown command before login and the connection ends:
		// protection against cross-protocol attacks (an HTTP request
		// sent to the IMAP port).
		c.bye("Unknown command")
		return false
	}
	return true
}

// run parses the tag and name, checks the state and runs the handler. The
// decoder's panics become errors here.
func (s *session) run(cmd *command) (err error) {
	defer func() {
		if v := recover(); v != nil {
			switch e := v.(type) {
			case *syntaxError:
				err = e
			case *literalRefused:
				err = no("TOOBIG", e.text)
			case *ioError:
				err = e
			default:
				panic(v)
			}
		}
	}()
	p := cmd.p
	cmd.tag = p.tag()
	if cmd.tag == "" {
		return &syntaxError{msg: "invalid tag"}
	}
	cmd.unknown = true
	p.sp()
	cmd.name = p.word()
	if cmd.name == "UID" {
		p.sp()
		cmd.name = "UID " + p.word()
		cmd.uid = true
	}
	spec, ok := commands[cmd.name]
	if !ok {
		return bad("", "Unknown command")
	}
	cmd.unknown = false
	if spec.states&s.state == 0 {
		switch s.state {
		case stateNotAuth:
			return bad("", "Log in first")
		case stateAuth:
			if spec.states == stateSelected {
				return bad("", "No mailbox selected")
			}
		}
		return bad("", "Not allowed now")
	}
	if err := spec.fn(s, cmd); err != nil {
		if p.stream != nil {
			p.finishStream()
		}
		return err
	}
	if s.sel != nil && !cmd.noPoll && !cmd.closed {
		if err := s.poll(spec.policy == pollAll, false, false); err != nil {
			return err
		}
	}
	if s.notifyPending.Load() && !cmd.noPoll && !cmd.closed {
		// NOTIFY: other mailboxes and the folder list, before the
		// tagged reply (the selected one was just polled).
		return s.notifyPass(false)
	}
	return nil
}

// tag reads a command tag: ASTRING-CHARs but "+".
func (p *parser) tag() string {
	start := p.pos
	for p.pos < len(p.line) {
		c := p.line[p.pos]
		if (isAtomChar(c) || c == ']') && c != '+' {
			p.pos++
			continue
		}
		break
	}
	return string(p.line[start:p.pos])
}

// skipRest reads and drops what is left of a command that failed: the
// non-synchronizing literals announced and the lines after them. It stops
// at a synchronizing literal: the client waits for a continuation request,
// gets the tagged reply instead and drops the command itself. false means
// the connection was ended.
//
// An APPEND's message may be drained up to AppendLimit beyond the drain
// limit: a client that sent a message over the limit with LITERAL+ keeps
// its connection.
func (s *session) skipRest(p *parser, appending bool) bool {
	limit := s.srv.maxDrain()
	if appending {
		limit += s.srv.appendLimit()
	}
	for p.trail.ok && !p.trail.sync {
		if !p.trail.valid || p.trail.size > limit {
			s.c.bye("Literal too big")
			return false
		}
		if err := s.c.discard(p.trail.size); err != nil {
			return s.readFailed(err)
		}
		seg, err := s.c.readLine(s.srv.maxLine(), s.c.lineDeadline())
		if err != nil {
			return s.readFailed(err)
		}
		p.setLine(seg)
	}
	return true
}

// readFailed ends the connection after a read error, with a BYE saying why
// where there is a reason to give.
func (s *session) readFailed(err error) bool {
	switch {
	case errors.Is(err, errLineTooLong):
		s.c.bye("Line too long")
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.c.bye("Timed out in the middle of a command")
	}
	return false
}

// respond writes the tagged reply; it reports whether it is OK.
func (s *session) respond(cmd *command, err error) bool {
	status, code, text := "OK", cmd.okCode, cmd.okText
	if text == "" {
		text = cmd.name + " completed"
	}
	if err != nil {
		var unexpected bool
		status, code, text, unexpected = reply(err)
		if unexpected {
			s.log.Error("imap: "+strings.ToLower(cmd.name), "err", err)
		}
	}
	if status == "BAD" {
		s.badCount++
	}
	o := &s.c.out
	o.writeString(cmd.tag)
	o.sp()
	o.writeString(status)
	if code != "" {
		o.writeString(" [" + code + "]")
	}
	o.sp()
	o.writeString(text)
	o.crlf()
	o.flush()
	return status == "OK"
}

// observe tells the Observer that a command finished.
func (s *session) observe(cmd *command, start time.Time, ok bool) {
	if o := s.srv.Observer; o != nil && cmd.name != "" {
		o.Command(s.c.accepted, cmd.name, time.Since(start), ok)
	}
}
