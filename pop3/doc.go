// Package pop3 is Letterbox's POP3 server: it serves each user's INBOX from
// the shared Maildir store to POP3 clients.
//
// It implements
//
//   - RFC 1939 (POP3): USER, PASS, STAT, LIST, RETR, DELE, NOOP, RSET, QUIT,
//     and the optional TOP and UIDL. APOP is not offered: it needs the
//     plaintext password on the server.
//   - RFC 2449 (extension mechanism): CAPA with TOP, UIDL, USER, SASL,
//     RESP-CODES, PIPELINING and AUTH-RESP-CODE.
//   - RFC 3206 response codes: [AUTH], [SYS/TEMP], [SYS/PERM]; and
//     [IN-USE] from RFC 2449 §8.1.1.
//   - RFC 2595 §4 STLS, and implicit TLS (RFC 8314 §3.3, port 995): a
//     connection accepted as a *tls.Conn is TLS from the first byte.
//   - RFC 5034 AUTH with the PLAIN mechanism (RFC 4616), with and without an
//     initial response.
//
// The server is shaped like net/http.Server: configuration lives in exported
// fields whose zero values are documented defaults, and it has Serve,
// ListenAndServe, ListenAndServeTLS, Shutdown and Close.
//
// # Behaviour worth knowing
//
// Message numbers and sizes are fixed when the session logs in (RFC 1939
// §4). Messages delivered afterwards appear in the next session. Sizes are
// counted with CRLF line ends, and bodies are sent with CRLF even if the
// file has bare LF, as Dovecot does.
//
// DELE only marks a message. QUIT expunges the marked messages, and adds
// \Seen to the messages fetched with RETR. Dovecot does the same, and so
// does RSET, which forgets both. TOP leaves \Seen alone. A session that
// ends any other way (dropped connection, timeout, shutdown) changes
// nothing (RFC 1939 §6).
//
// UIDL is Dovecot's default form, "%08x%08x" of UID and UIDVALIDITY. A
// message whose dovecot-uidlist line keeps a UIDL from an earlier server
// (the P extension field) gets that instead. Either way, a client that
// migrates from Dovecot does not download its mail again.
//
// One user can have only one POP3 session at a time. A second login gets
// "-ERR [IN-USE]". The lock is a store flock, so it dies with the session
// or the process.
//
// Plaintext authentication (USER/PASS, AUTH PLAIN) is only offered and
// accepted over TLS, unless AllowInsecureAuth is set, or
// AllowInsecureLoopback is set and the client is on a loopback address.
package pop3
