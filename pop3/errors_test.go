package pop3

import (
	"fmt"
	"io/fs"
	"log/slog"
	"syscall"
	"testing"

	"github.com/letterbox-mail/letterbox/store"
)

// TestNoSpaceReply: a full disk or quota is a temporary failure, and the
// reply names neither the path nor the errno.
func TestNoSpaceReply(t *testing.T) {
	log := slog.New(newTestLog(t))
	for _, err := range []error{
		fmt.Errorf("store: deliver: %w", store.ErrNoSpace),
		fmt.Errorf("store: write uidlist: %w", &fs.PathError{Op: "write", Path: "/var/mail/x/dovecot-uidlist", Err: syscall.ENOSPC}),
		&fs.PathError{Op: "write", Path: "/var/mail/x/tmp/1", Err: syscall.EDQUOT},
	} {
		re := toReply(log, err)
		if re.code != codeSysTemp || re.text != "Mail storage is full, try again later." || re.bad || re.close {
			t.Errorf("%v → %+v", err, re)
		}
	}
}
