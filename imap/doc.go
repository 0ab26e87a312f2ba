// Package imap serves IMAP over the shared store: a backend for
// github.com/emersion/go-imap/v2/imapserver plus a Server with the shape of
// net/http.Server (exported fields with defaults, Serve, ListenAndServe,
// Shutdown, Close).
//
// Implemented:
//
//   - RFC 3501 IMAP4rev1 and RFC 9051 IMAP4rev2 (every command of both)
//   - RFC 2177 IDLE, RFC 3691 UNSELECT, RFC 5161 ENABLE, RFC 2342 NAMESPACE
//   - RFC 6851 MOVE, RFC 4315 UIDPLUS (APPENDUID, COPYUID, UID EXPUNGE)
//   - RFC 7888 LITERAL+, RFC 4959 SASL-IR, RFC 4616 PLAIN (and the LOGIN
//     mechanism of draft-murchison-sasl-login)
//   - RFC 4731 ESEARCH, RFC 5182 SEARCHRES
//   - RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 3348 CHILDREN
//   - RFC 6154 SPECIAL-USE and CREATE-SPECIAL-USE
//   - RFC 8438 STATUS=SIZE, RFC 3516 BINARY, RFC 7889 APPENDLIMIT
//   - RFC 8437 UNAUTHENTICATE, RFC 6855 UTF8=ACCEPT
//   - RFC 2595/RFC 8314 STARTTLS and implicit TLS
//
// # The layer in front of imapserver
//
// imapserver reads commands from a net.Conn. Ours (wireConn) is a wrapper
// that frames the client's input into command lines and literals before
// imapserver sees a byte. It enforces the line and literal limits, answers
// what imapserver gets wrong (an over-limit literal that would hang the
// client or whose LITERAL+ bytes would be read as commands, ID, STARTTLS),
// sets the read deadlines, and writes the CAPABILITY lists itself, because
// imapserver computes them from a *tls.Conn it never sees and adds atoms
// we do not advertise. See wire.go and wireout.go.
package imap
