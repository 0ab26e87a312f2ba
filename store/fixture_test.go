package store_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
	"github.com/letterbox-mail/letterbox/store/storetest"
)

// manifest is the part of the fixture's manifest.json these tests check.
type manifest struct {
	Folders []struct {
		IMAPName    string   `json:"imap_name"`
		Hierarchy   []string `json:"hierarchy"`
		Dir         *string  `json:"dir"`
		Selectable  bool     `json:"selectable"`
		Subscribed  bool     `json:"subscribed"`
		UIDValidity uint32   `json:"uidvalidity"`
		UIDNext     uint32   `json:"uidnext"`
		Exists      int      `json:"exists"`
		SelectFlags []string `json:"select_flags"`
		Messages    []struct {
			UID          uint32   `json:"uid"`
			Flags        []string `json:"flags"`
			Keywords     []string `json:"keywords"`
			RFC822Size   int64    `json:"rfc822_size"`
			InternalDate int64    `json:"internaldate_unix"`
			Path         string   `json:"path"`
		} `json:"messages"`
	} `json:"folders"`
	Subscriptions struct {
		UTF8 []string `json:"lsub_utf8"`
	} `json:"subscriptions"`
	Unindexed []struct {
		Path      string `json:"path"`
		CRLFSize  int64  `json:"crlf_size"`
		MtimeUnix int64  `json:"mtime_unix"`
	} `json:"unindexed"`
}

// systemFlags maps IMAP's system flags, as the manifest writes them.
var systemFlags = map[string]store.Flag{
	`\Answered`: store.FlagAnswered, `\Flagged`: store.FlagFlagged, `\Deleted`: store.FlagDeleted,
	`\Seen`: store.FlagSeen, `\Draft`: store.FlagDraft,
}

func openFixture(t *testing.T, opts store.Options) (*store.Store, *store.User, string) {
	t.Helper()
	dir := t.TempDir()
	opts.PathTemplate = storetest.UserMaildir(t, dir)
	s, err := store.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u, err := s.User("fixture")
	if err != nil {
		t.Fatal(err)
	}
	return s, u, u.Root()
}

// Every UID, UIDVALIDITY, UIDNEXT, flag, keyword, size and internal date
// Dovecot reported for its own Maildir must come out the same.
func TestDovecotFixtureOpensAsDovecotSaw(t *testing.T) {
	var man manifest
	storetest.Manifest(t, &man)
	_, u, root := openFixture(t, store.Options{})
	ctx := context.Background()

	for _, f := range man.Folders {
		if !f.Selectable {
			continue
		}
		name := strings.Join(f.Hierarchy, "/")
		t.Run(name, func(t *testing.T) {
			m, err := u.Open(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var got []store.Message
			var uidValidity, uidNext uint32
			var keywords []string
			m.Read(ctx, func(v *store.View) {
				uidValidity, uidNext, keywords = v.UIDValidity(), v.UIDNext(), v.Keywords()
				for i := 0; i < v.Len(); i++ {
					got = append(got, v.At(i))
				}
			})
			if uidValidity != f.UIDValidity {
				t.Errorf("UIDVALIDITY = %d, Dovecot said %d", uidValidity, f.UIDValidity)
			}
			wantNext := f.UIDNext
			if name == "INBOX" {
				// The unindexed file in new/ got UID 19 (Dovecot did
				// the same on its scratch copy: after-pickup/).
				wantNext = 20
			}
			if uidNext != wantNext {
				t.Errorf("UIDNEXT = %d, want %d", uidNext, wantNext)
			}
			var wantKW []string
			for _, fl := range f.SelectFlags {
				if !strings.HasPrefix(fl, `\`) {
					wantKW = append(wantKW, fl)
				}
			}
			if !slices.Equal(keywords, wantKW) {
				t.Errorf("keywords = %q, want %q (unused ones included)", keywords, wantKW)
			}
			if name == "INBOX" {
				if len(got) != len(f.Messages)+1 {
					t.Fatalf("%d messages, want %d + the unindexed one", len(got), len(f.Messages))
				}
				last := got[len(got)-1]
				if last.UID != 19 || last.Size != man.Unindexed[0].CRLFSize || !last.Recent || last.Flags != 0 {
					t.Errorf("unindexed message = %+v, want UID 19, size %d, recent", last, man.Unindexed[0].CRLFSize)
				}
				got = got[:len(got)-1]
			}
			if len(got) != len(f.Messages) {
				t.Fatalf("%d messages, Dovecot had %d", len(got), len(f.Messages))
			}
			for i, want := range f.Messages {
				g := got[i]
				var wantFlags store.Flag
				for _, fl := range want.Flags {
					wantFlags |= systemFlags[fl]
				}
				if g.UID != want.UID || g.Flags != wantFlags || g.Size != want.RFC822Size || g.Recent {
					t.Errorf("message %d = %+v, want UID %d flags %v size %d", i+1, g, want.UID, want.Flags, want.RFC822Size)
				}
				if !slices.Equal(g.Keywords, want.Keywords) && len(g.Keywords)+len(want.Keywords) > 0 {
					t.Errorf("UID %d keywords = %q, want %q", g.UID, g.Keywords, want.Keywords)
				}
				date, err := m.InternalDate(g.UID)
				if err != nil || date.Unix() != want.InternalDate {
					t.Errorf("UID %d internal date = %v (%v), want %v", g.UID, date, err, time.Unix(want.InternalDate, 0))
				}
			}
		})
	}

	// Dovecot's own pickup of the unindexed file, reproduced on disk.
	ul, err := os.ReadFile(filepath.Join(root, "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ul), "\n19 W727 :1795674600.V803I4d5e6fM777777.mx\n") {
		t.Errorf("uidlist lacks Dovecot's line for the picked-up file:\n%s", ul)
	}
	// Like Dovecot, new lines are added at the end and the header's N is
	// left as it was (readers take the larger of N and the last UID + 1).
	if !strings.HasPrefix(string(ul), "3 V1795677296 N19 Gd9ba63136edc076b587a000083ecc375\n") {
		t.Errorf("uidlist header = %q", strings.SplitN(string(ul), "\n", 2)[0])
	}
	if _, err := os.Stat(filepath.Join(root, "cur", "1795674600.V803I4d5e6fM777777.mx:2,")); err != nil {
		t.Errorf("picked-up file not moved to cur/: %v", err)
	}
	// Lines Dovecot wrote are kept as they were (W and S fields).
	if !strings.Contains(string(ul), "\n13 W769 S752 :1795161600.V803I1a2b3cM123456.mx\n") {
		t.Errorf("uidlist lost Dovecot's extension fields:\n%s", ul)
	}
}

func TestDovecotFixtureFoldersAndSubscriptions(t *testing.T) {
	var man manifest
	storetest.Manifest(t, &man)
	_, u, _ := openFixture(t, store.Options{})
	list, err := u.List()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.MailboxInfo{}
	for _, mi := range list {
		got[mi.Name] = mi
	}
	for _, f := range man.Folders {
		name := strings.Join(f.Hierarchy, "/")
		mi, ok := got[name]
		if !ok {
			t.Errorf("folder %q not listed", name)
			continue
		}
		if mi.NoSelect == f.Selectable {
			t.Errorf("%q: NoSelect = %v, Dovecot's selectable = %v", name, mi.NoSelect, f.Selectable)
		}
		if mi.Subscribed != f.Subscribed {
			t.Errorf("%q: Subscribed = %v, want %v", name, mi.Subscribed, f.Subscribed)
		}
		delete(got, name)
	}
	if len(got) != 0 {
		t.Errorf("extra folders listed: %v", got)
	}
	subs, err := u.Subscriptions()
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(man.Subscriptions.UTF8))
	for i, s := range man.Subscriptions.UTF8 {
		want[i] = strings.ReplaceAll(s, ".", "/") // Dovecot's "." separator → ours
	}
	if !slices.Equal(subs, want) {
		t.Errorf("subscriptions = %q, want %q", subs, want)
	}
}

// What we write must still be read by Dovecot: the uidlist keeps the v3
// header and Dovecot's line form, and a subscription we add is written in
// its TAB-separated form.
func TestWriteBackKeepsDovecotFormats(t *testing.T) {
	_, u, root := openFixture(t, store.Options{})
	ctx := context.Background()
	m, err := u.Open(ctx, "Archive/2026")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	uid, err := m.Append(ctx, strings.NewReader("Subject: x\n\nbody\n"), store.AppendOptions{Flags: store.FlagSeen, Keywords: []string{"project-x"}})
	if err != nil {
		t.Fatal(err)
	}
	if uid != 3 {
		t.Errorf("appended UID = %d, want 3 (UIDNEXT was 3)", uid)
	}
	ul, _ := os.ReadFile(filepath.Join(root, ".Archive.2026", "dovecot-uidlist"))
	lines := strings.Split(strings.TrimSuffix(string(ul), "\n"), "\n")
	if !strings.HasPrefix(lines[0], "3 V1795677300 N3 G") {
		t.Errorf("header = %q", lines[0])
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "3 :") || !strings.Contains(last, ",S=17,W=20") {
		t.Errorf("new line = %q, want `3 :<base>,S=17,W=20`", last)
	}
	kw, _ := os.ReadFile(filepath.Join(root, ".Archive.2026", "dovecot-keywords"))
	if string(kw) != "0 project-x\n" {
		t.Errorf("dovecot-keywords = %q", kw)
	}
	names, _ := filepath.Glob(filepath.Join(root, ".Archive.2026", "cur", "*,S=17,W=20:2,Sa"))
	if len(names) != 1 {
		t.Errorf("new file with flags Sa not found: %v", names)
	}

	if err := u.Subscribe("Work/Projects"); err != nil {
		t.Fatal(err)
	}
	subs, _ := os.ReadFile(filepath.Join(root, "subscriptions"))
	if !strings.HasPrefix(string(subs), "V\t2\n\n") || !strings.HasSuffix(string(subs), "\nWork\tProjects\n") || !strings.Contains(string(subs), "\nEntw&APw-rfe\n") {
		t.Errorf("subscriptions = %q", subs)
	}
}
