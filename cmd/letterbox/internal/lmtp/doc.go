// Package lmtp is Letterbox's LMTP server (RFC 2033): it takes mail from an
// MTA such as Postfix (lmtp:unix:/run/letterbox/lmtp) and writes one copy
// per recipient into the recipient's INBOX in the store. The protocol is
// go-smtp's server in LMTP mode; this package is its backend, its limits
// and its shutdown.
//
// RCPT TO looks the address up whole ("alice@example.org"), then by its
// local part ("alice"), letter case ignored as logins do; an unknown one
// gets 550 5.1.1 and the MTA bounces it. After DATA each recipient gets its
// own reply (RFC 2033 §4.2): 250 once its copy, behind "Return-Path:" and
// "Delivered-To:" lines, is on disk; 452 when the disk or quota is full;
// 451 for any other store failure, so that the MTA retries that recipient
// alone. A message is acknowledged only once it is on disk: a failure
// never loses mail, and at worst a retry after a lost reply delivers it
// twice.
//
// The Server is shaped like pop3.Server and net/http.Server: exported
// fields with documented defaults, Serve, Shutdown and Close. Every limit
// is a field: connections in all and per client, a deadline for each whole
// command line, one for each message transfer, the message size and the
// recipients per transaction.
package lmtp
