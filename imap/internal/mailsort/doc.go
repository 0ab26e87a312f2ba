// Package mailsort computes the keys and orderings of the IMAP SORT and
// THREAD extensions. It is pure: it reads no messages and knows no
// protocol syntax. The IMAP engine extracts a Keys value per message from
// raw header fields (the store may cache it: every field is a plain string
// or integer), then calls Sort, ThreadOrderedSubject or ThreadReferences
// and writes the result with AppendThreads.
//
// Implemented:
//   - RFC 5256 (SORT and THREAD): base subject (§2.1), sent date (§2.2),
//     the SORT criteria, THREAD=ORDEREDSUBJECT and THREAD=REFERENCES with
//     every step of §3, and the THREAD response form of §4;
//   - RFC 5957 (SORT=DISPLAY): the DISPLAYFROM and DISPLAYTO criteria and
//     the display sort value of an address (§3);
//   - RFC 4790 §9.2 i;ascii-casemap, the collation every string comparison
//     here uses (see Compare);
//   - RFC 2047 encoded-words, decoded to UTF-8 with go-message's charset
//     tables, and the RFC 5322 address, date and msg-id syntax including
//     the obsolete forms of its §4, read leniently.
//
// Keys refer to messages by their index in the slice the caller passes;
// that slice must be in mailbox (sequence number) order, because RFC 5256
// breaks every tie by sequence number.
package mailsort
