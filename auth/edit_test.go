package auth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// onlyUsersFiles fails if anything but the users file and its lock file is
// left in dir (a leaked temporary file, say).
func onlyUsersFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "users" && e.Name() != "users.lock" {
			t.Errorf("stray file %s", e.Name())
		}
	}
}

func TestEditKeepsOtherLines(t *testing.T) {
	h1 := testHash(t, "one", bcrypt.MinCost)
	h2 := testHash(t, "two", bcrypt.MinCost)
	orig := "# users, managed by hand too\n" +
		"\n" +
		"alice:" + h1 + ":1000:1000::/home/alice::userdb_mail=maildir:~/Mail\n" +
		"carol:{SHA512-CRYPT}$6$keep$me\n" +
		"  # indented\n" +
		"bob:" + h1 + "\n"
	path := writeFile(t, orig)

	if err := SetPassword(path, "ALICE", h2); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(orig, "alice:"+h1+":", "alice:"+h2+":", 1)
	if got := readFile(t, path); got != want {
		t.Fatalf("after SetPassword:\n%s\nwant:\n%s", got, want)
	}

	if err := AddUser(path, "dave@example.org", h2); err != nil {
		t.Fatal(err)
	}
	want += "dave@example.org:" + h2 + "\n"
	if got := readFile(t, path); got != want {
		t.Fatalf("after AddUser:\n%s\nwant:\n%s", got, want)
	}

	if err := DeleteUser(path, "Bob"); err != nil {
		t.Fatal(err)
	}
	want = strings.Replace(want, "bob:"+h1+"\n", "", 1)
	if got := readFile(t, path); got != want {
		t.Fatalf("after DeleteUser:\n%s\nwant:\n%s", got, want)
	}

	users, err := ListUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"alice", "carol", "dave@example.org"}; !slices.Equal(users, want) {
		t.Errorf("ListUsers = %v, want %v", users, want)
	}
	onlyUsersFiles(t, filepath.Dir(path))
}

func TestEditErrors(t *testing.T) {
	h := testHash(t, "pw", bcrypt.MinCost)
	path := writeFile(t, "alice:"+h+"\n")
	before := readFile(t, path)
	checks := []struct {
		name string
		err  error
		want error
	}{
		{"add existing", AddUser(path, "Alice", h), ErrUserExists},
		{"add bad name", AddUser(path, "../x", h), ErrInvalidUsername},
		{"add bad hash", AddUser(path, "x", "{PLAIN}pw"), ErrUnsupportedHash},
		{"add hash with newline", AddUser(path, "x", h+"\nroot:"+h), ErrUnsupportedHash},
		{"set unknown", SetPassword(path, "nobody", h), ErrUnknownUser},
		{"set bad hash", SetPassword(path, "alice", "$2y$04$short"), ErrUnsupportedHash},
		{"delete unknown", DeleteUser(path, "nobody"), ErrUnknownUser},
		{"delete empty", DeleteUser(path, ""), ErrInvalidUsername},
		{"set in missing file", SetPassword(path+".missing", "alice", h), os.ErrNotExist},
		{"delete in missing file", DeleteUser(path+".missing", "alice"), os.ErrNotExist},
	}
	for _, c := range checks {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if got := readFile(t, path); got != before {
		t.Errorf("failed edits changed the file:\n%s", got)
	}
	if _, err := ListUsers(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ListUsers of a missing file: %v", err)
	}
}

// AddUser creates a missing file with mode 0600.
func TestAddUserCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	if err := AddUser(path, "alice", testHash(t, "pw", bcrypt.MinCost)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if users, _ := ListUsers(path); !slices.Equal(users, []string{"alice"}) {
		t.Errorf("users %v", users)
	}
}

// Edits replace the file by rename (a reader holding the old file keeps a
// complete old version), keep group permissions and drop access for others.
func TestEditIsAtomicReplace(t *testing.T) {
	h := testHash(t, "pw", bcrypt.MinCost)
	path := writeFile(t, "alice:"+h) // no final newline
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oldInfo, _ := old.Stat()

	if err := AddUser(path, "bob", h); err != nil {
		t.Fatal(err)
	}
	newInfo, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(oldInfo, newInfo) {
		t.Error("file was rewritten in place, not replaced")
	}
	if newInfo.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 (0644 minus others)", newInfo.Mode().Perm())
	}
	if st, ok := newInfo.Sys().(*syscall.Stat_t); ok {
		ost := oldInfo.Sys().(*syscall.Stat_t)
		if st.Uid != ost.Uid || st.Gid != ost.Gid {
			t.Errorf("owner changed from %d:%d to %d:%d", ost.Uid, ost.Gid, st.Uid, st.Gid)
		}
	}
	buf := make([]byte, 100)
	n, _ := old.Read(buf)
	if got := string(buf[:n]); got != "alice:"+h {
		t.Errorf("old descriptor reads %q", got)
	}
	if got, want := readFile(t, path), "alice:"+h+"\nbob:"+h+"\n"; got != want {
		t.Errorf("file %q, want %q", got, want)
	}
	onlyUsersFiles(t, filepath.Dir(path))
}

// CRLF files stay CRLF, and a symlinked users file stays a symlink.
func TestEditCRLFAndSymlink(t *testing.T) {
	h := testHash(t, "pw", bcrypt.MinCost)
	dir := t.TempDir()
	real := filepath.Join(dir, "real-users")
	if err := os.WriteFile(real, []byte("# c\r\nalice:"+h+":1000\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "users")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := AddUser(link, "bob", h); err != nil {
		t.Fatal(err)
	}
	h2 := testHash(t, "pw2", bcrypt.MinCost)
	if err := SetPassword(link, "alice", h2); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink replaced: %v %v", fi.Mode(), err)
	}
	if got, want := readFile(t, real), "# c\r\nalice:"+h2+":1000\r\nbob:"+h+"\r\n"; got != want {
		t.Errorf("file %q, want %q", got, want)
	}
	e := newEnv(t, "x:"+h, nil)
	e.a.file = link
	if err := e.a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth("alice", "pw2", ip1); err != nil {
		t.Errorf("alice after CRLF edit: %v", err)
	}
}

// DeleteUser removes every entry of the name, so a forgotten duplicate cannot
// take over.
func TestDeleteUserRemovesDuplicates(t *testing.T) {
	h := testHash(t, "pw", bcrypt.MinCost)
	path := writeFile(t, "alice:"+h+"\nbob:"+h+"\nALICE:"+h+"\n")
	if err := DeleteUser(path, "alice"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != "bob:"+h+"\n" {
		t.Errorf("file %q", got)
	}
}

// Concurrent editors are serialized by the lock: no addition is lost.
func TestConcurrentAddUser(t *testing.T) {
	h := testHash(t, "pw", bcrypt.MinCost)
	path := writeFile(t, "# header\n")
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	var others sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- AddUser(path, fmt.Sprintf("user%02d", i), h)
		}()
	}
	// Password changes run alongside; they may find their user or not
	// yet, but must not lose anybody else's line.
	for i := range 5 {
		others.Add(1)
		go func() {
			defer others.Done()
			SetPassword(path, fmt.Sprintf("user%02d", i), h)
		}()
	}
	wg.Wait()
	others.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	users, err := ListUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != n {
		t.Errorf("%d users after %d concurrent adds: %v", len(users), n, users)
	}
	if !strings.HasPrefix(readFile(t, path), "# header\n") {
		t.Error("header lost")
	}
	onlyUsersFiles(t, filepath.Dir(path))
}
