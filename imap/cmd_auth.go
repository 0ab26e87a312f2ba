package imap

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/letterbox-mail/letterbox/store"
)

// Commands of any state, of the not-authenticated state, and the ones that
// change what the connection is: CAPABILITY, NOOP, LOGOUT, ID, STARTTLS,
// LOGIN, AUTHENTICATE, UNAUTHENTICATE, ENABLE, NAMESPACE, COMPRESS.

func (s *session) cmdCapability(cmd *command) error {
	cmd.p.end()
	s.c.out.writeString("* CAPABILITY " + s.capabilities() + "\r\n")
	return nil
}

// cmdNoop is NOOP and CHECK (RFC 9051 dropped CHECK; it does no harm):
// the updates that follow are the point.
func (s *session) cmdNoop(cmd *command) error {
	cmd.p.end()
	return nil
}

func (s *session) cmdLogout(cmd *command) error {
	cmd.p.end()
	s.c.out.writeString("* BYE Logging out\r\n")
	s.loggedOut = true
	cmd.noPoll = true
	return nil
}

// cmdID is RFC 2971 ID, in any state. What the client says about itself
// is logged; the answer tells nothing about the server.
func (s *session) cmdID(cmd *command) error {
	p := cmd.p
	p.sp()
	var fields []string
	if !p.takeFold("NIL") {
		p.list(true, func() {
			k := p.str(1024)
			p.sp()
			v, _ := p.nstring()
			if len(fields) < 60 {
				fields = append(fields, k, v)
			}
		})
	}
	p.end()
	if len(fields) > 0 {
		args := make([]any, 0, len(fields))
		for i := 0; i+1 < len(fields); i += 2 {
			k := strings.ToLower(fields[i])
			if k == "name" || k == "version" || k == "vendor" || k == "os" || k == "os-version" {
				args = append(args, "client_"+strings.ReplaceAll(k, "-", "_"), clipLog(fields[i+1]))
			}
		}
		s.log.Info("imap: client id", args...)
	}
	s.c.out.writeString("* ID NIL\r\n")
	return nil
}

func clipLog(v string) string {
	if len(v) > 100 {
		v = v[:100]
	}
	return strings.ToValidUTF8(v, "?")
}

func (s *session) cmdStartTLS(cmd *command) error {
	cmd.p.end()
	switch {
	case s.c.isTLS:
		return bad("", "TLS is already active")
	case s.srv.TLSConfig == nil:
		return no("", "STARTTLS is not available")
	}
	s.respond(cmd, nil)
	cmd.replied = true
	if s.c.out.err != nil {
		return errConnClosed
	}
	if err := s.c.startTLS(); err != nil {
		s.log.Debug("imap: STARTTLS handshake failed", "err", err)
		return errConnClosed
	}
	return nil
}

func (s *session) cmdLogin(cmd *command) error {
	p := cmd.p
	p.sp()
	user := p.astring()
	p.sp()
	pass := p.astring()
	p.end()
	if err := s.login(user, pass); err != nil {
		return err
	}
	s.loggedIn(cmd)
	return nil
}

// loggedIn makes the tagged OK of a login carry the new capabilities,
// which Thunderbird reads instead of asking again.
func (s *session) loggedIn(cmd *command) {
	cmd.okCode = "CAPABILITY " + s.capabilities()
	cmd.okText = "Logged in"
}

// cmdAuthenticate is RFC 3501 §6.2.2 AUTHENTICATE with SASL-IR (RFC 4959):
// PLAIN (RFC 4616) and LOGIN.
func (s *session) cmdAuthenticate(cmd *command) error {
	p := cmd.p
	p.sp()
	mech := strings.ToUpper(p.atom())
	var initial []byte
	if p.maybeSP() {
		ir := p.atomChars(false)
		if ir == "" {
			p.fail("expected an initial response")
		}
		initial = []byte{}
		if ir != "=" {
			b, err := base64.StdEncoding.DecodeString(ir)
			if err != nil {
				return bad("", "Malformed initial response")
			}
			initial = b
		}
	}
	p.end()
	if !s.authAllowed() {
		return errPrivacyRequired
	}
	var srv sasl.Server
	switch mech {
	case "PLAIN":
		srv = sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return no("AUTHORIZATIONFAILED", "Acting as another user is not supported")
			}
			return s.login(username, password)
		})
	case "LOGIN":
		srv = &loginServer{login: s.login}
	default:
		return no("", "Unsupported authentication mechanism")
	}
	resp := initial // nil without an initial response
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			var pe *protoError
			if errors.As(err, &pe) {
				return err
			}
			return bad("", "Malformed SASL response")
		}
		if done {
			s.loggedIn(cmd)
			return nil
		}
		if err := s.c.continuation(base64.StdEncoding.EncodeToString(challenge)); err != nil {
			return errConnClosed
		}
		line, err := s.c.readLine(s.srv.maxLine(), time.Now().Add(orDefault(s.srv.LoginTimeout, DefaultLoginTimeout)))
		if err != nil {
			return &ioError{err}
		}
		text := strings.TrimRight(string(line), "\r\n")
		if text == "*" {
			return bad("", "Authentication cancelled")
		}
		resp, err = base64.StdEncoding.DecodeString(text)
		if err != nil {
			return bad("", "Malformed SASL response")
		}
	}
}

// loginServer is the LOGIN mechanism (draft-murchison-sasl-login): the
// server asks for "Username:" and "Password:".
type loginServer struct {
	login    func(user, pass string) error
	step     int
	username string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(response) == 0 {
			return []byte("Username:"), false, nil
		}
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 1:
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.login(l.username, string(response))
	}
	return nil, false, fmt.Errorf("sasl: unexpected LOGIN response")
}

// cmdUnauthenticate is RFC 8437 UNAUTHENTICATE.
func (s *session) cmdUnauthenticate(cmd *command) error {
	cmd.p.end()
	s.logoutUser()
	cmd.noPoll = true
	return nil
}

// cmdEnable is RFC 5161 ENABLE. IMAP4rev2 (RFC 9051), UTF8=ACCEPT (RFC
// 6855), CONDSTORE and QRESYNC (RFC 7162 §3.1, §3.2.3; QRESYNC implies
// CONDSTORE) can be enabled; others are ignored.
func (s *session) cmdEnable(cmd *command) error {
	p := cmd.p
	var enabled []string
	condstore := false
	for p.maybeSP() {
		c := strings.ToUpper(p.atom())
		switch c {
		case "IMAP4REV2":
			s.rev2 = true
			enabled = append(enabled, "IMAP4rev2")
		case "UTF8=ACCEPT":
			s.utf8 = true
			enabled = append(enabled, "UTF8=ACCEPT")
		case "CONDSTORE":
			condstore = true
			enabled = append(enabled, "CONDSTORE")
		case "QRESYNC":
			condstore, s.qresync = true, true
			enabled = append(enabled, "QRESYNC")
		}
	}
	p.end()
	s.c.out.utf8 = s.utf8Names()
	s.c.out.writeString("* ENABLED")
	for _, e := range enabled {
		s.c.out.writeString(" " + e)
	}
	s.c.out.crlf()
	if condstore {
		s.enableCondstore()
	}
	return nil
}

// cmdNamespace is RFC 2342 NAMESPACE: one personal namespace with an empty
// prefix (Outlook needs it so) and "/".
func (s *session) cmdNamespace(cmd *command) error {
	cmd.p.end()
	s.c.out.writeString(`* NAMESPACE (("" "` + string(store.Separator) + `")) NIL NIL` + "\r\n")
	return nil
}

// cmdCompress is RFC 4978 COMPRESS DEFLATE.
func (s *session) cmdCompress(cmd *command) error {
	p := cmd.p
	p.sp()
	alg := strings.ToUpper(p.atom())
	p.end()
	switch {
	case alg != "DEFLATE":
		return bad("", "Unknown compression mechanism")
	case s.c.compressed:
		return no("COMPRESSIONACTIVE", "DEFLATE is already active")
	}
	cmd.okText = "DEFLATE active"
	cmd.noPoll = true
	s.respond(cmd, nil)
	cmd.replied = true
	if s.c.out.err != nil {
		return errConnClosed
	}
	s.c.startCompress()
	return nil
}
