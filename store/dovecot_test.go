package store_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/letterbox-mail/letterbox/store"
	"github.com/letterbox-mail/letterbox/store/storetest"
)

// Dovecot itself reads what we wrote. Its imap binary runs in PREAUTH
// mode on the Maildir (no daemon), as an unprivileged user because Dovecot
// refuses root. .ci/run installs dovecot-imapd; without it the test is
// skipped, and says so.

const dovecotIMAP = "/usr/lib/dovecot/imap"

type dovecot struct {
	t    *testing.T
	dir  string // holds Maildir/, dovecot.conf
	uid  int
	user string
}

func newDovecot(t *testing.T, dir string) *dovecot {
	t.Helper()
	if _, err := os.Stat(dovecotIMAP); err != nil {
		t.Skipf("Dovecot is not installed (%s); .ci/run installs dovecot-imapd", dovecotIMAP)
	}
	d := &dovecot{t: t, dir: dir, uid: os.Getuid()}
	if d.uid == 0 {
		d.uid = 65534 // nobody: Dovecot will not touch mail as root
		if err := exec.Command("chown", "-R", "65534:65534", dir).Run(); err != nil {
			t.Fatal(err)
		}
		for p := dir; p != "/"; p = filepath.Dir(p) {
			os.Chmod(p, 0o755) // let nobody walk down to the Maildir
		}
	}
	conf := fmt.Sprintf(`mail_location = maildir:%s/Maildir
base_dir = %s/run
state_dir = %s/state
log_path = /dev/stderr
ssl = no
mail_uid = %d
mail_gid = %d
first_valid_uid = 0
first_valid_gid = 0
`, dir, dir, dir, d.uid, d.uid)
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// run sends IMAP commands to Dovecot and returns its answers.
func (d *dovecot) run(cmds ...string) string {
	d.t.Helper()
	var in strings.Builder
	for i, c := range cmds {
		fmt.Fprintf(&in, "t%d %s\r\n", i, c)
	}
	in.WriteString("z LOGOUT\r\n")
	args := []string{dovecotIMAP, "-c", filepath.Join(d.dir, "dovecot.conf")}
	if os.Getuid() == 0 {
		args = append([]string{"setpriv", fmt.Sprintf("--reuid=%d", d.uid), fmt.Sprintf("--regid=%d", d.uid), "--clear-groups"}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = []string{"USER=fixture", "HOME=" + d.dir, "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		d.t.Fatalf("dovecot: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "Error:") || strings.Contains(string(out), "Fatal:") {
		d.t.Errorf("dovecot complained:\n%s", out)
	}
	return string(out)
}

var fetchLine = regexp.MustCompile(`(?m)^\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) RFC822.SIZE (\d+)\)`)

// dovecotView is "uid flags size" per message, as Dovecot answers it.
func (d *dovecot) view(mailbox string) []string {
	out := d.run(fmt.Sprintf("EXAMINE %q", mailbox), "UID FETCH 1:* (UID FLAGS RFC822.SIZE)")
	var lines []string
	for _, m := range fetchLine.FindAllStringSubmatch(out, -1) {
		flags := strings.Fields(strings.ReplaceAll(m[2], `\Recent`, ""))
		slices.Sort(flags)
		lines = append(lines, fmt.Sprintf("%s %s %s", m[1], strings.Join(flags, ","), m[3]))
	}
	return lines
}

// ourView is the same from our store.
func ourView(t *testing.T, u *store.User, mailbox string) []string {
	t.Helper()
	m, err := u.Open(context.Background(), mailbox)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var lines []string
	m.Read(context.Background(), func(v *store.View) {
		for i := 0; i < v.Len(); i++ {
			msg := v.At(i)
			var flags []string
			for f, bit := range systemFlags {
				if msg.Flags&bit != 0 {
					flags = append(flags, f)
				}
			}
			flags = append(flags, msg.Keywords...)
			slices.Sort(flags)
			lines = append(lines, fmt.Sprintf("%d %s %d", msg.UID, strings.Join(flags, ","), msg.Size))
		}
	})
	return lines
}

func TestDovecotReadsWhatWeWrite(t *testing.T) {
	dir := t.TempDir()
	tmpl := storetest.UserMaildir(t, dir)
	s, err := store.Open(store.Options{PathTemplate: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := s.User("fixture")
	ctx := context.Background()
	in := openBox(t, u, "INBOX")
	in.Append(ctx, strings.NewReader("Subject: new\n\nhello\n"), store.AppendOptions{Flags: store.FlagFlagged, Keywords: []string{"Later", "brand-new"}})
	in.SetFlags(ctx, []uint32{13, 14}, store.FlagsAdd, store.FlagSeen, []string{"$NotJunk"}, nil)
	in.SetFlags(ctx, []uint32{9}, store.FlagsRemove, 0, []string{"Later"}, nil)
	in.Expunge(ctx, store.ExpungeOptions{OnlyDeleted: true}) // UID 16
	if err := u.Create("Neu/Ordner ü", store.UseNone); err != nil {
		t.Fatal(err)
	}
	u.Subscribe("Neu/Ordner ü")
	dst := openBox(t, u, "Neu/Ordner ü")
	in.Copy(ctx, []uint32{5, 8}, dst)
	in.Move(ctx, []uint32{1}, openBox(t, u, "Trash"), nil)

	// Dovecot's view of the folder tree lives in its dovecot.list.index,
	// which it keeps in step with the directories itself.
	d := newDovecot(t, filepath.Join(dir, "fixture"))
	for _, mb := range []string{"INBOX", "Trash", "Neu/Ordner ü"} {
		dovecotName := strings.ReplaceAll(mb, "/", ".")
		dovecotName = strings.ReplaceAll(dovecotName, "ü", "&APw-")
		want := ourView(t, u, mb)
		got := d.view(dovecotName)
		if !slices.Equal(got, want) {
			t.Errorf("%s: Dovecot sees\n%s\nwe see\n%s", mb, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	lsub := d.run(`LSUB "" "*"`)
	if !strings.Contains(lsub, `"." "Neu.Ordner &APw-"`) {
		t.Errorf("Dovecot does not see our subscription:\n%s", lsub)
	}
}

// And the other way round: what Dovecot does to the Maildir afterwards is
// what we see, with Dovecot's UIDs.
func TestWeReadWhatDovecotWrites(t *testing.T) {
	dir := t.TempDir()
	tmpl := storetest.UserMaildir(t, dir)
	d := newDovecot(t, filepath.Join(dir, "fixture"))
	d.run("SELECT INBOX",
		"APPEND INBOX (\\Seen NewKeyword) {20+}\r\nSubject: dovecot\r\n\r\n",
		"UID STORE 2 +FLAGS (\\Flagged $Junk)",
		"UID STORE 16 -FLAGS (\\Deleted)",
		"UID EXPUNGE 1",
		`CREATE "Made.By.Dovecot"`,
	)
	s, err := store.Open(store.Options{PathTemplate: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := s.User("fixture")
	want := d.view("INBOX")
	if got := ourView(t, u, "INBOX"); !slices.Equal(got, want) {
		t.Errorf("INBOX: we see\n%s\nDovecot sees\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !slices.Contains(names(t, u), "Made/By/Dovecot") {
		t.Errorf("folder Dovecot made is not listed: %v", names(t, u))
	}
}

// Dovecot and Letterbox on the same folder by turns, Letterbox's index
// staying open throughout: every change Dovecot makes reaches our feed with
// a MODSEQ above everything before, with Dovecot's UIDs, and Dovecot keeps
// agreeing with us on every UID, flag and keyword.
func TestDovecotAndUsTakeTurns(t *testing.T) {
	dir := t.TempDir()
	tmpl := storetest.UserMaildir(t, dir)
	home := filepath.Join(dir, "fixture")
	s, err := store.Open(store.Options{PathTemplate: tmpl, NoWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := s.User("fixture")
	ctx := context.Background()
	in := openBox(t, u, "INBOX")
	mr := watch(t, in, "INBOX")
	modseqOf := func(uid uint32) (ms, hms uint64) {
		in.Read(ctx, func(v *store.View) {
			hms = v.HighestModSeq()
			if i := v.Seq(uid); i > 0 {
				ms = v.At(i - 1).ModSeq
			}
		})
		return
	}
	d := newDovecot(t, home)
	chown := func() {
		if os.Getuid() == 0 {
			exec.Command("chown", "-R", "65534:65534", home).Run()
		}
	}
	for round := 0; round < 3; round++ {
		ms2, hms := modseqOf(2)
		chown()
		d.run("SELECT INBOX",
			fmt.Sprintf("UID STORE 2 %sFLAGS (\\Flagged Round%d)", []string{"+", "-"}[round%2], round),
			fmt.Sprintf("APPEND INBOX (\\Seen) {%d+}\r\nSubject: dovecot %d\r\n\r\n", len(fmt.Sprintf("Subject: dovecot %d\r\n\r\n", round)), round),
		)
		want := d.view("INBOX")
		if got := ourView(t, u, "INBOX"); !slices.Equal(got, want) {
			t.Fatalf("round %d: we see\n%s\nDovecot sees\n%s", round, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		ms2b, hmsb := modseqOf(2)
		if ms2b <= ms2 || hmsb <= hms || ms2b > hmsb {
			t.Errorf("round %d: after Dovecot's STORE UID 2 MODSEQ %d → %d, HIGHESTMODSEQ %d → %d", round, ms2, ms2b, hms, hmsb)
		}
		// Our turn: a flag and a message of ours, which Dovecot must see.
		if _, err := in.SetFlags(ctx, []uint32{4}, store.FlagsAdd, store.FlagAnswered, []string{fmt.Sprintf("Ours%d", round)}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Append(ctx, strings.NewReader(fmt.Sprintf("Subject: ours %d\n\nx\n", round)), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		chown()
		if got, want := d.view("INBOX"), ourView(t, u, "INBOX"); !slices.Equal(got, want) {
			t.Fatalf("round %d: Dovecot sees\n%s\nwe see\n%s", round, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	mr.check(t, in)
	checkUidlist(t, filepath.Join(home, "Maildir"))
}
