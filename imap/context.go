package imap

// CONTEXT=SEARCH (RFC 5267) updates: not implemented yet.

func (s *session) startUpdate(cmd *command, a *searchArgs) {}

func (s *session) cmdCancelUpdate(cmd *command) error {
	return bad("", "Unknown command")
}
