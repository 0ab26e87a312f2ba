package imap

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/letterbox-mail/letterbox/store"
)

// Helpers of the CONDSTORE and QRESYNC tests: the store's side of a
// mailbox (MODSEQs, flags) for the scripts, and changes made the way
// another program would make them.

// mboxState is what the store has of a mailbox.
type mboxState struct {
	uidValidity uint32
	uidNext     uint32
	highest     uint64
	uids        []uint32
	modSeq      map[uint32]uint64
	flags       map[uint32]string // "(\Seen $Label)", as FETCH shows them without \Recent
}

func (e *testEnv) state(user, mailbox string) mboxState {
	e.t.Helper()
	m, err := e.user(user).Open(context.Background(), mailbox)
	if err != nil {
		e.t.Fatal(err)
	}
	defer m.Close()
	st := mboxState{modSeq: map[uint32]uint64{}, flags: map[uint32]string{}}
	err = m.Read(context.Background(), func(v *store.View) {
		st.uidValidity, st.uidNext, st.highest = v.UIDValidity(), v.UIDNext(), v.HighestModSeq()
		for i := 0; i < v.Len(); i++ {
			msg := v.At(i)
			st.uids = append(st.uids, msg.UID)
			st.modSeq[msg.UID] = msg.ModSeq
			st.flags[msg.UID] = flagString(msg.Flags, msg.Keywords)
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func flagString(f store.Flag, kws []string) string {
	var parts []string
	for _, fl := range imapFlags(f, kws) {
		parts = append(parts, string(fl))
	}
	return "(" + strings.Join(parts, " ") + ")"
}

// vars are the script variables of a state: V (UIDVALIDITY), N (UIDNEXT),
// H (HIGHESTMODSEQ) and M<uid> (each message's MODSEQ).
func (st mboxState) vars() map[string]string {
	v := map[string]string{
		"V": strconv.FormatUint(uint64(st.uidValidity), 10),
		"N": strconv.FormatUint(uint64(st.uidNext), 10),
		"H": strconv.FormatUint(st.highest, 10),
	}
	for u, m := range st.modSeq {
		v["M"+strconv.Itoa(int(u))] = strconv.FormatUint(m, 10)
	}
	return v
}

// num reads a bound variable as a number.
func num(t *testing.T, vars map[string]string, name string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(vars[name], 10, 64)
	if err != nil {
		t.Fatalf("variable %s: %q", name, vars[name])
	}
	return n
}

// ascending checks that the named variables are strictly ascending.
func ascending(t *testing.T, vars map[string]string, names ...string) {
	t.Helper()
	for i := 1; i < len(names); i++ {
		if a, b := num(t, vars, names[i-1]), num(t, vars, names[i]); a >= b {
			t.Errorf("%s=%d is not below %s=%d", names[i-1], a, names[i], b)
		}
	}
}

// addFlags sets flags on messages through the store, as another program
// would.
func (e *testEnv) addFlags(user, mailbox string, f store.Flag, kws []string, uids ...uint32) {
	e.t.Helper()
	e.setFlags(user, mailbox, store.FlagsAdd, f, kws, uids...)
}

func (e *testEnv) setFlags(user, mailbox string, op store.FlagOp, f store.Flag, kws []string, uids ...uint32) {
	e.t.Helper()
	m, err := e.user(user).Open(context.Background(), mailbox)
	if err != nil {
		e.t.Fatal(err)
	}
	defer m.Close()
	changed, err := m.SetFlags(context.Background(), uids, op, f, kws, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(changed) != len(uids) {
		e.t.Fatalf("changed %v of %v", changed, uids)
	}
}

// claimRecent takes \Recent of a mailbox's messages, so that sessions
// see none.
func (e *testEnv) claimRecent(user, mailbox string) {
	e.t.Helper()
	m, err := e.user(user).Open(context.Background(), mailbox)
	if err != nil {
		e.t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.ClaimRecent(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// expungeUIDs removes messages through the store.
func (e *testEnv) expungeUIDs(user, mailbox string, uids ...uint32) {
	e.t.Helper()
	m, err := e.user(user).Open(context.Background(), mailbox)
	if err != nil {
		e.t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Expunge(context.Background(), store.ExpungeOptions{UIDs: uids}); err != nil {
		e.t.Fatal(err)
	}
}

// threeOfFour makes messages with UIDs 1 to 4 and expunges the first, so
// that sequence numbers 1 to 3 are UIDs 2 to 4 and the two cannot be
// mistaken for each other.
func threeOfFour(e *testEnv) {
	e.t.Helper()
	for _, s := range []string{"one", "two", "three", "four"} {
		e.appendMsg("alice", "INBOX", msg(s), 0)
	}
	e.expungeUIDs("alice", "INBOX", 1)
	e.claimRecent("alice", "INBOX")
}
