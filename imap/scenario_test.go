package imap

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// A full scenario through go-imap's imapclient: every command of RFC 3501
// and RFC 9051 and of the extensions we advertise.

type unilateral struct {
	mu       sync.Mutex
	expunged []uint32
	exists   []uint32
	fetched  []string
}

func (u *unilateral) handler() *imapclient.UnilateralDataHandler {
	return &imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { u.mu.Lock(); u.expunged = append(u.expunged, seq); u.mu.Unlock() },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				u.mu.Lock()
				u.exists = append(u.exists, *d.NumMessages)
				u.mu.Unlock()
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			b, _ := m.Collect()
			if b != nil {
				u.mu.Lock()
				u.fetched = append(u.fetched, fmt.Sprintf("%d %v", b.SeqNum, b.Flags))
				u.mu.Unlock()
			}
		},
	}
}

func (u *unilateral) take() (expunged, exists []uint32, fetched []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	expunged, exists, fetched = u.expunged, u.exists, u.fetched
	u.expunged, u.exists, u.fetched = nil, nil, nil
	return
}

func appendString(t *testing.T, c *imapclient.Client, mailbox, msg string, opts *imap.AppendOptions) *imap.AppendData {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(msg)), opts)
	cmd.Write([]byte(msg))
	cmd.Close()
	return must[*imap.AppendData](t)(cmd.Wait())
}

func TestScenarioEveryCommand(t *testing.T) {
	e := newEnv(t)
	var un unilateral
	// STARTTLS, then AUTHENTICATE PLAIN.
	c, err := imapclient.DialStartTLS(e.addr, &imapclient.Options{TLSConfig: e.clientTLS, UnilateralDataHandler: un.handler()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(sasl.NewPlainClient("", "alice", testPassword)); err != nil {
		t.Fatal(err)
	}

	caps := must[imap.CapSet](t)(c.Capability().Wait())
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIMAP4rev2, imap.CapIdle, imap.CapUnselect, imap.CapEnable,
		imap.CapNamespace, imap.CapMove, imap.CapUIDPlus, imap.CapLiteralPlus, imap.CapSASLIR, imap.CapESearch,
		imap.CapSearchRes, imap.CapListExtended, imap.CapListStatus, imap.CapSpecialUse, imap.CapCreateSpecialUse,
		imap.CapChildren, imap.CapStatusSize, imap.CapBinary, imap.CapUnauthenticate} {
		if !caps.Has(want) {
			t.Errorf("capability %s missing", want)
		}
	}
	if limit, ok := caps.AppendLimit(); !ok || limit == nil || *limit != DefaultAppendLimit {
		t.Errorf("APPENDLIMIT %v %v", ok, limit)
	}

	ns := must[*imap.NamespaceData](t)(c.Namespace().Wait())
	if len(ns.Personal) != 1 || ns.Personal[0].Prefix != "" || ns.Personal[0].Delim != '/' || ns.Other != nil || ns.Shared != nil {
		t.Errorf("NAMESPACE %+v", ns)
	}

	// Mailboxes.
	if err := c.Create("Projects/2026", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Later", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrFlagged}}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("INBOX", nil).Wait(); err == nil {
		t.Error("CREATE INBOX succeeded")
	}
	if err := c.Create("Bad", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{"\\Bogus"}}).Wait(); err == nil {
		t.Error("CREATE with an unknown special use succeeded")
	}
	if err := c.Subscribe("Projects/2026").Wait(); err != nil {
		t.Fatal(err)
	}
	// RENAME of a parent that exists only as one moves its children.
	if err := c.Rename("Projects", "Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("Nothing", "Else", nil).Wait(); err == nil {
		t.Error("RENAME of a missing mailbox succeeded")
	}
	list := must[[]*imap.ListData](t)(c.List("", "*", nil).Collect())
	got := listSummary(list)
	want := `INBOX[\HasNoChildren] Archive[\HasNoChildren \Archive] Drafts[\HasNoChildren \Drafts] Junk[\HasNoChildren \Junk] ` +
		`Later[\HasNoChildren \Flagged] Sent[\HasNoChildren \Sent] Trash[\HasNoChildren \Trash] Work[\Noselect \HasChildren] Work/2026[\HasNoChildren]`
	if got != want {
		t.Errorf("LIST *\n got %s\nwant %s", got, want)
	}
	list = must[[]*imap.ListData](t)(c.List("", "%", &imap.ListOptions{SelectSpecialUse: true, ReturnStatus: &imap.StatusOptions{NumMessages: true, UIDNext: true}}).Collect())
	if got := listSummary(list); got != `Archive[\HasNoChildren \Archive] Drafts[\HasNoChildren \Drafts] Junk[\HasNoChildren \Junk] Later[\HasNoChildren \Flagged] Sent[\HasNoChildren \Sent] Trash[\HasNoChildren \Trash]` {
		t.Errorf("LIST (SPECIAL-USE) %%: %s", got)
	}
	for _, l := range list {
		if l.Status == nil || l.Status.NumMessages == nil || *l.Status.NumMessages != 0 || l.Status.UIDNext != 1 {
			t.Errorf("LIST-STATUS of %s: %+v", l.Mailbox, l.Status)
		}
	}
	list = must[[]*imap.ListData](t)(c.List("", "*", &imap.ListOptions{SelectSubscribed: true, SelectRecursiveMatch: true}).Collect())
	if got := listSummary(list); !strings.Contains(got, `Work/2026[\HasNoChildren \Subscribed]`) || !strings.Contains(got, "INBOX[") {
		t.Errorf("LIST (SUBSCRIBED): %s", got)
	}
	if err := c.Unsubscribe("Work/2026").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe("Work/2026").Wait(); err == nil {
		t.Error("second UNSUBSCRIBE succeeded")
	}
	if err := c.Delete("Work/2026").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Error("DELETE INBOX succeeded")
	}

	// APPEND with flags, keyword and date; APPENDUID.
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ad := appendString(t, c, "INBOX", msg("first"), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged, "Project-X"}, Time: date})
	if ad.UID != 1 || ad.UIDValidity == 0 {
		t.Errorf("APPENDUID %+v", ad)
	}
	appendString(t, c, "INBOX", "From: b@example.org\r\nSubject: second\r\nDate: Sat, 14 Mar 2026 10:00:00 +0000\r\n\r\nsecond body, with a needle\r\n", nil)
	appendString(t, c, "INBOX", msg("third"), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
	if cmd := c.Append("Nowhere", 3, nil); cmd != nil {
		cmd.Write([]byte("abc"))
		cmd.Close()
		if _, err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "TRYCREATE") {
			t.Errorf("APPEND to a missing mailbox: %v", err)
		}
	}

	st := must[*imap.StatusData](t)(c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true,
		NumUnseen: true, NumDeleted: true, Size: true, AppendLimit: true}).Wait())
	if *st.NumMessages != 3 || st.UIDNext != 4 || *st.NumUnseen != 2 || *st.NumDeleted != 0 || *st.Size == 0 || *st.AppendLimit != DefaultAppendLimit {
		t.Errorf("STATUS %+v", st)
	}

	// EXAMINE, then SELECT.
	sd := must[*imap.SelectData](t)(c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait())
	if sd.NumMessages != 3 || len(sd.PermanentFlags) != 0 {
		t.Errorf("EXAMINE %+v", sd)
	}
	sd = must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())
	if sd.NumMessages != 3 || sd.UIDNext != 4 || fmt.Sprint(sd.Flags) != `[\Answered \Flagged \Deleted \Seen \Draft Project-X]` {
		t.Errorf("SELECT %+v", sd)
	}

	// ENABLE.
	en := must[*imapclient.EnableData](t)(c.Enable(imap.CapUTF8Accept).Wait())
	if !en.Caps.Has(imap.CapUTF8Accept) {
		t.Errorf("ENABLE %+v", en)
	}

	// FETCH. The messages were appended before this session's SELECT, so
	// they are \Recent to it (RFC 3501 §2.3.2).
	msgs := must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}},
	}).Collect())
	if len(msgs) != 1 || msgs[0].UID != 1 || !msgs[0].InternalDate.Equal(date) || fmt.Sprint(msgs[0].Flags) != `[\Flagged Project-X \Recent]` ||
		string(msgs[0].BodySection[0].Bytes) != "Subject: first\r\n\r\n" {
		t.Errorf("FETCH %+v %v %s", *msgs[0], msgs[0].Flags, msgs[0].BodySection[0].Bytes)
	}

	// STORE: +, -, =, .SILENT, keywords in the case sent.
	flags := func(set imap.NumSet, op imap.StoreFlagsOp, silent bool, fl ...imap.Flag) []*imapclient.FetchMessageBuffer {
		return must[[]*imapclient.FetchMessageBuffer](t)(c.Store(set, &imap.StoreFlags{Op: op, Silent: silent, Flags: fl}, nil).Collect())
	}
	if r := flags(imap.SeqSetNum(2), imap.StoreFlagsAdd, false, imap.FlagAnswered, "$Forwarded", "CamelCase"); len(r) != 1 || fmt.Sprint(r[0].Flags) != `[\Answered $Forwarded CamelCase \Recent]` {
		t.Errorf("STORE +FLAGS: %v", r[0].Flags)
	}
	if r := flags(imap.SeqSetNum(2), imap.StoreFlagsDel, false, "camelcase"); len(r) != 1 || fmt.Sprint(r[0].Flags) != `[\Answered $Forwarded \Recent]` {
		t.Errorf("STORE -FLAGS: %v", r[0].Flags)
	}
	if r := flags(imap.UIDSetNum(3), imap.StoreFlagsSet, false, imap.FlagDraft); len(r) != 1 || r[0].UID != 3 || fmt.Sprint(r[0].Flags) != `[\Draft \Recent]` {
		t.Errorf("UID STORE FLAGS: %v %v", r[0].UID, r[0].Flags)
	}
	if r := flags(imap.SeqSetNum(1), imap.StoreFlagsAdd, true, imap.FlagSeen); len(r) != 0 {
		t.Errorf("STORE .SILENT answered %+v", r)
	}

	// SEARCH, ESEARCH, SEARCHRES.
	search := func(crit *imap.SearchCriteria, opts *imap.SearchOptions) *imap.SearchData {
		return must[*imap.SearchData](t)(c.Search(crit, opts).Wait())
	}
	if r := search(&imap.SearchCriteria{Body: []string{"NEEDLE"}}, nil); fmt.Sprint(r.AllSeqNums()) != "[2]" {
		t.Errorf("SEARCH BODY: %v", r.AllSeqNums())
	}
	if r := search(&imap.SearchCriteria{Flag: []imap.Flag{"project-x"}}, nil); fmt.Sprint(r.AllSeqNums()) != "[1]" {
		t.Errorf("SEARCH KEYWORD: %v", r.AllSeqNums())
	}
	if r := search(&imap.SearchCriteria{SentSince: time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC), SentBefore: time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)}, nil); fmt.Sprint(r.AllSeqNums()) != "[2]" {
		t.Errorf("SEARCH SENTON: %v", r.AllSeqNums())
	}
	if r := search(&imap.SearchCriteria{Since: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Before: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)}, nil); fmt.Sprint(r.AllSeqNums()) != "[1]" {
		t.Errorf("SEARCH ON: %v", r.AllSeqNums())
	}
	// (imapclient drops SAVE; SEARCHRES is tested on the wire below.)
	r := search(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDraft}}, &imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true})
	if r.Min != 1 || r.Max != 2 || r.Count != 2 {
		t.Errorf("ESEARCH %+v", r)
	}
	if r := search(&imap.SearchCriteria{Larger: 50, Smaller: 60}, nil); fmt.Sprint(r.AllSeqNums()) != "[1 3]" {
		t.Errorf("SEARCH LARGER SMALLER: %v", r.AllSeqNums())
	}
	if r := must[*imap.SearchData](t)(c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "THIRD"}}}, nil).Wait()); fmt.Sprint(r.AllUIDs()) != "[3]" {
		t.Errorf("UID SEARCH HEADER: %v", r.AllUIDs())
	}

	// COPY with COPYUID; MOVE with COPYUID and EXPUNGE.
	cd := must[*imap.CopyData](t)(c.Copy(imap.SeqSetNum(1, 2), "Archive").Wait())
	if cd.SourceUIDs.String() != "1:2" || cd.DestUIDs.String() != "1:2" || cd.UIDValidity == 0 {
		t.Errorf("COPYUID %+v", cd)
	}
	if _, err := c.Copy(imap.SeqSetNum(1), "Nowhere").Wait(); err == nil || !strings.Contains(err.Error(), "TRYCREATE") {
		t.Errorf("COPY to a missing mailbox: %v", err)
	}
	un.take()
	md := must[*imapclient.MoveData](t)(c.Move(imap.UIDSetNum(3), "Trash").Wait())
	if md.SourceUIDs.String() != "3" || md.DestUIDs.String() != "1" {
		t.Errorf("MOVE %+v", md)
	}
	if exp, _, _ := un.take(); fmt.Sprint(exp) != "[3]" {
		t.Errorf("MOVE expunged %v", exp)
	}

	// EXPUNGE and UID EXPUNGE.
	flags(imap.SeqSetNum(1, 2), imap.StoreFlagsAdd, true, imap.FlagDeleted)
	if exp := must[[]uint32](t)(c.UIDExpunge(imap.UIDSetNum(2)).Collect()); fmt.Sprint(exp) != "[2]" {
		t.Errorf("UID EXPUNGE: %v", exp)
	}
	if exp := must[[]uint32](t)(c.Expunge().Collect()); fmt.Sprint(exp) != "[1]" {
		t.Errorf("EXPUNGE: %v", exp)
	}

	// IDLE, with an append by another client.
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	other := e.client("alice", nil)
	appendString(t, other, "INBOX", msg("during idle"), nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		un.mu.Lock()
		n := len(un.exists)
		un.mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, exists, _ := un.take(); fmt.Sprint(exists) != "[1]" {
		t.Errorf("IDLE: EXISTS %v", exists)
	}

	// NOOP, CHECK (imapclient has none: raw), UNSELECT, CLOSE.
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	must[*imap.SelectData](t)(c.Select("Archive", nil).Wait())
	flags(imap.SeqSetNum(1), imap.StoreFlagsAdd, true, imap.FlagDeleted)
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Fatal(err)
	}
	if st := must[*imap.StatusData](t)(c.Status("Archive", &imap.StatusOptions{NumMessages: true}).Wait()); *st.NumMessages != 1 {
		t.Errorf("CLOSE did not expunge: %d", *st.NumMessages)
	}

	// UNAUTHENTICATE, then LOGIN again, then LOGOUT.
	if err := c.Unauthenticate().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Login("bob", testPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if st := must[*imap.StatusData](t)(c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()); *st.NumMessages != 0 {
		t.Errorf("bob sees %d messages", *st.NumMessages)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}

	// CHECK and the raw forms imapclient does not send.
	rc := e.login("alice")
	rc.ok("r1 SELECT INBOX")
	rc.ok("r2 CHECK")
	rc.ok(`r3 LIST "" "*" RETURN (CHILDREN SUBSCRIBED SPECIAL-USE)`)
	rc.ok("r4 FETCH 1 FAST")
	rc.ok("r5 FETCH 1 ALL")
	rc.ok("r6 FETCH 1 FULL")
	if u := rc.ok("r7 FETCH 1 (RFC822.HEADER RFC822.TEXT RFC822 RFC822.SIZE BODY)"); len(u) != 1 ||
		!strings.Contains(u[0], "RFC822.HEADER {") || !strings.Contains(u[0], "RFC822.TEXT {") || !strings.Contains(u[0], "BODY (") {
		t.Errorf("RFC822 items: %q", u)
	}
	if u := rc.ok("r8 LSUB \"\" \"*\""); len(u) == 0 {
		t.Error("LSUB: nothing")
	}
	rc.ok("r9 LOGOUT")
}

func listSummary(l []*imap.ListData) string {
	var out []string
	for _, d := range l {
		var attrs []string
		for _, a := range d.Attrs {
			attrs = append(attrs, string(a))
		}
		out = append(out, d.Mailbox+"["+strings.Join(attrs, " ")+"]")
	}
	return strings.Join(out, " ")
}
