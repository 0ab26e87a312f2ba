package auth

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestParseUsers(t *testing.T) {
	h := testHash(t, "pw", bcrypt.MinCost)
	content := strings.Join([]string{
		"# Letterbox users",
		"",
		"   ",
		"alice:" + h,
		"bob@example.org:" + bare(h) + ":1000:1000::/home/bob::userdb_quota_rule=*:storage=1G",
		"  # indented comment",
		"carol:{SHA512-CRYPT}$6$salt$hash:1001",
		"dave:{PLAIN}secret",
		"ALICE:" + h, // duplicate in another case: first wins
		"erin:$2y$04$tooshort",
		"no password field",
		"bad/name:" + h,
		"frank:" + h + "\r",
		"grace:",
		"heidi:{CRYPT}" + bare(h),
	}, "\n") + "\n"
	tab, issues := parseUsers([]byte(content))

	usable := map[string]bool{}
	for _, u := range tab.order {
		usable[u.name] = u.hash != nil
	}
	want := map[string]bool{
		"alice": true, "bob@example.org": true, "carol": false, "dave": false,
		"erin": false, "frank": true, "grace": false, "heidi": true,
	}
	if fmt.Sprint(usable) != fmt.Sprint(want) {
		t.Errorf("users = %v\nwant    %v", usable, want)
	}
	if u := tab.byKey[foldKey("Bob@Example.ORG")]; u == nil || u.name != "bob@example.org" {
		t.Errorf("case-insensitive lookup of bob = %+v", u)
	}
	if u := tab.byKey["alice"]; u == nil || u.line != 4 {
		t.Errorf("alice = %+v, want the entry from line 4", u)
	}

	// One issue per unusable line, with its line number and (when the
	// name is valid) the user; reasons never contain hash text.
	gotLines := map[int]string{}
	for _, is := range issues {
		gotLines[is.line] = is.user
		if strings.Contains(is.err.Error(), "$2y$") || strings.Contains(is.err.Error(), "secret") {
			t.Errorf("line %d: reason %q leaks the password field", is.line, is.err)
		}
	}
	wantLines := map[int]string{7: "carol", 8: "dave", 9: "ALICE", 10: "erin", 11: "", 12: "", 14: "grace"}
	if fmt.Sprint(gotLines) != fmt.Sprint(wantLines) {
		t.Errorf("issues at %v\nwant       %v", gotLines, wantLines)
	}
	if got := tab.names(); !slices.Equal(got, []string{"alice", "bob@example.org", "carol", "dave", "erin", "frank", "grace", "heidi"}) {
		t.Errorf("names() = %v", got)
	}
}

func TestParseUsersEmpty(t *testing.T) {
	for _, content := range []string{"", "\n", "# only a comment\n", "\r\n"} {
		tab, issues := parseUsers([]byte(content))
		if len(tab.order) != 0 || len(issues) != 0 {
			t.Errorf("parseUsers(%q) = %d users, %d issues", content, len(tab.order), len(issues))
		}
	}
}

func TestDummyCost(t *testing.T) {
	h4 := bare(testHash(t, "a", 4))
	h5 := bare(testHash(t, "a", 5))
	tests := []struct {
		hashes []string
		want   int
	}{
		{nil, DefaultCost},
		{[]string{h4}, 4},
		{[]string{h4, h5, h5}, 5},
		{[]string{h4, h4, h5}, 4},
		{[]string{h4, h5}, 5}, // tie: the higher cost
		{[]string{"{PLAIN}x"}, DefaultCost},
	}
	for i, tt := range tests {
		var b strings.Builder
		for j, h := range tt.hashes {
			fmt.Fprintf(&b, "u%d:%s\n", j, h)
		}
		tab, _ := parseUsers([]byte(b.String()))
		if got := tab.dummyCost(); got != tt.want {
			t.Errorf("case %d: dummyCost = %d, want %d", i, got, tt.want)
		}
	}
}

// Loading logs one warning per bad line with file, line and user, and never
// the hash.
func TestLoadWarnings(t *testing.T) {
	secretHash := "$6$rounds=5000$saltsalt$SECRETHASHVALUE"
	e := newEnv(t, strings.Join([]string{
		"alice:" + testHash(t, "pw", bcrypt.MinCost),
		"carol:{SHA512-CRYPT}" + secretHash,
		"alice:" + testHash(t, "other", bcrypt.MinCost),
	}, "\n"), nil)
	warns := e.log.matching("users file: ignoring entry")
	if len(warns) != 2 {
		t.Fatalf("got %d warnings, want 2: %s", len(warns), e.log.allText())
	}
	for i, want := range []struct{ line, user string }{{"2", "carol"}, {"3", "alice"}} {
		w := warns[i]
		if w.attrs["file"] != e.path || w.attrs["line"] != want.line || w.attrs["user"] != want.user || w.attrs["reason"] == "" {
			t.Errorf("warning %d = %v, want file %s line %s user %s", i, w.attrs, e.path, want.line, want.user)
		}
	}
	if text := e.log.allText(); strings.Contains(text, "SECRETHASHVALUE") || strings.Contains(text, "$2y$") {
		t.Errorf("log leaks a hash:\n%s", text)
	}
	if _, err := e.auth("carol", "anything", ip1); err == nil {
		t.Error("carol with an unsupported scheme logged in")
	}
}

func FuzzParseUsersFile(f *testing.F) {
	h := testHash(f, "pw", bcrypt.MinCost)
	f.Add([]byte("alice:" + h + "\n"))
	f.Add([]byte("# c\n\nbob@example.org:" + bare(h) + ":1000:1000::/home/bob::x=y\n"))
	f.Add([]byte("carol:{SHA512-CRYPT}$6$a$b\r\ndave:{PLAIN}x\r\n"))
	f.Add([]byte("alice:" + h + "\nALICE:" + h))
	f.Add([]byte(":::\n:\n{\n}:{}\n"))
	f.Add([]byte("x:{CRYPT}$2y$99$" + strings.Repeat(".", 53)))
	f.Add([]byte("x:{BLF-CRYPT\x00\n\xff:\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, issues := parseUsers(data)
		seen := map[string]bool{}
		for _, u := range tab.order {
			if err := ValidUsername(u.name); err != nil {
				t.Fatalf("accepted invalid name %q: %v", u.name, err)
			}
			if seen[foldKey(u.name)] {
				t.Fatalf("duplicate %q accepted", u.name)
			}
			seen[foldKey(u.name)] = true
			if tab.byKey[foldKey(u.name)] != u {
				t.Fatalf("byKey and order disagree on %q", u.name)
			}
			if u.hash != nil {
				if err := checkBcryptHash(string(u.hash)); err != nil {
					t.Fatalf("usable user %q with bad hash: %v", u.name, err)
				}
				_ = hashCost(u.hash)
			} else if u.disabled == nil {
				t.Fatalf("user %q has neither hash nor reason", u.name)
			}
		}
		if len(tab.byKey) != len(tab.order) {
			t.Fatalf("byKey has %d users, order %d", len(tab.byKey), len(tab.order))
		}
		for _, is := range issues {
			if is.err == nil || is.line < 1 {
				t.Fatalf("bad issue %+v", is)
			}
		}
		_ = tab.dummyCost()
		// Editing must round-trip every byte of lines it does not touch.
		if len(data) > 0 && data[len(data)-1] == '\n' {
			if got := joinLines(splitLines(data)); string(got) != string(data) {
				t.Fatalf("split/join changed %q into %q", data, got)
			}
		}
	})
}
