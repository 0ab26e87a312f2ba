// Package auth checks Letterbox logins against a users file in Dovecot's
// passwd-file format, and edits that file for the `letterbox user` commands.
// It knows nothing of IMAP or POP3.
//
// # Users file
//
// One user per line, fields separated by ":":
//
//	# comment
//	alice:{BLF-CRYPT}$2y$10$...
//	bob@example.org:$2b$10$...:1000:1000::/home/bob::userdb_quota_rule=*:storage=1G
//
// The first field is the username ("user" or "user@domain", see
// ValidUsername); lookups ignore case and return the name as written. The
// second is the password: {BLF-CRYPT} followed by a bcrypt hash (what
// `doveadm pw -s BLF-CRYPT` and HashPassword print), a bare bcrypt hash, or
// {CRYPT} with a bcrypt hash ($2a$, $2b$ and $2y$ are all accepted). Further
// fields (uid, gid, gecos, home, shell, extra fields) are ignored, so a
// Dovecot file can be used unchanged. Blank lines and lines starting with "#"
// are skipped; CRLF line ends are accepted.
//
// A line Letterbox cannot use (another scheme such as {SHA512-CRYPT} or
// {PLAIN}, a malformed hash, an invalid name, a later duplicate of a name)
// does not stop the others from loading: it is logged as one warning with the
// file, line number, user and reason, never the hash. A user whose only entry
// is unusable cannot log in.
//
// The Authenticator reloads the file when its inode, size or mtime changes
// (checked on login at most once per ReloadInterval) and on Reload, which the
// server calls on SIGHUP. A file that fails to load leaves the previous users
// in force.
//
// # Failed logins and fail2ban
//
// Every failed Authenticate call writes exactly one record at level Warn with
// the message "authentication failed" and the attributes, in this order:
//
//	ip      client address ("unknown" if the caller had none)
//	user    the username the client sent (cut to 255 bytes)
//	reason  one of: invalid username, unknown user, wrong password,
//	        password too long, login disabled (bad users file entry),
//	        throttled
//
// With slog's text handler the line reads
//
//	time=2025-01-02T03:04:05.000Z level=WARN msg="authentication failed" ip=203.0.113.7 user=bob reason="wrong password"
//
// (attributes the server's logger adds with With come between msg and ip).
// A fail2ban filter can use
//
//	failregex = msg="authentication failed" (?:\S+ )*?ip=<HOST> user=
//
// The ip attribute precedes the user name on purpose: everything before it
// is chosen by the server, so no crafted user name can supply a fake address.
// The reason is for the administrator; clients only ever see
// ErrInvalidCredentials or ErrThrottled.
//
// # Timing and throttling
//
// An unknown user costs one bcrypt comparison against a dummy hash of the
// cost most users in the file have, so neither the error nor the time taken
// tells an attacker whether the name exists. Every failure then waits
// FailDelay. After ThrottleFailures failures from one address (an IPv6 /64
// counts as one address) within ThrottleWindow, further attempts from it are
// refused with ErrThrottled, without bcrypt, until ThrottleWindow has passed
// since the last counted failure. Loopback is not exempt.
package auth
