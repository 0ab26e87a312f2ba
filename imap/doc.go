// Package imap serves IMAP over the shared store with a protocol layer of
// its own, written from the RFCs, and a Server with the shape of
// net/http.Server (exported fields with defaults, Serve, ListenAndServe,
// Shutdown, Close). go-imap/v2's imap package types are its vocabulary
// where they fit; its imapclient drives the tests.
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
//   - RFC 8437 UNAUTHENTICATE, RFC 6855 UTF8=ACCEPT, RFC 2971 ID
//   - RFC 3502 MULTIAPPEND, RFC 4469 CATENATE (with RFC 5092 URLs)
//   - RFC 4978 COMPRESS=DEFLATE, RFC 5032 WITHIN, RFC 8970 PREVIEW
//   - RFC 5256 SORT, THREAD=REFERENCES and THREAD=ORDEREDSUBJECT, RFC 5957
//     SORT=DISPLAY (keys from the store's cache, i;ascii-casemap)
//   - RFC 5267 ESORT, CONTEXT=SEARCH and CONTEXT=SORT
//   - RFC 9208 QUOTA (STORAGE and MESSAGE, when a limit is set)
//   - RFC 7162 CONDSTORE and QRESYNC, on the store's MODSEQs and expunge
//     log (condstore.go, qresync.go). HIGHESTMODSEQ is sent on SELECT once
//     CONDSTORE is enabled, as Dovecot does; past the log's memory of
//     expunges, VANISHED (EARLIER) names every missing UID asked about
//   - RFC 5465 NOTIFY (notify.go): the selected mailbox, other mailboxes
//     as STATUS, the folder list and subscriptions as LIST, from the
//     store's change feeds and its folder feed, so other processes' and
//     hosts' changes are reported too; notifications go out between
//     commands and in IDLE (under COMPRESS, only in IDLE and with
//     commands: a wait under DEFLATE cannot be cut short)
//   - RFC 2595/RFC 8314 STARTTLS and implicit TLS
//
// # Shape
//
// Three parts that never mix (STYLE.md §11):
//
//   - decode (decode.go, and the parse functions next to each command):
//     bytes to typed arguments, every limit checked before anything is
//     read or allocated;
//   - dispatch (dispatch.go): the state check, one handler per command
//     returning an error, and respond, the one place that writes tagged
//     replies (errors.go maps errors to them);
//   - encode (encode.go, fetch_write.go): responses into a pooled buffer
//     flushed when the client must act on it; message literals read from
//     the store's Body straight into it.
//
// What clients fetch in bulk (header fields, ENVELOPE, BODYSTRUCTURE, the
// SORT keys) is kept in the store's per-folder cache (cacheitem.go), so
// that after a restart too it is answered without opening message files.
//
// Unsolicited updates of the selected mailbox come from one queue per
// session fed by the store's change feed and drained where the RFC allows
// (updates.go).
package imap
