package pop3

import (
	"math"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line, verb, arg string
		ok              bool
	}{
		{"STAT\r\n", "STAT", "", true},
		{"stat\n", "STAT", "", true}, // bare LF: openssl s_client
		{"RETR 1\r\n", "RETR", "1", true},
		{"PASS pass word \r\n", "PASS", "pass word ", true},
		{"TOP 1 2", "TOP", "1 2", true},
		{"LIST\r", "LIST", "", true},
		{"\r\n", "", "", false},
		{" STAT\r\n", "", "", false},
		{"STATS\r\n", "", "", false},
		{"ST4T\r\n", "", "", false},
		{"\x00\r\n", "", "", false},
		{"Ü\r\n", "", "", false},
	}
	for _, tt := range tests {
		verb, arg, ok := parseCommand(tt.line)
		if verb != tt.verb || arg != tt.arg || ok != tt.ok {
			t.Errorf("parseCommand(%q) = %q, %q, %v; want %q, %q, %v", tt.line, verb, arg, ok, tt.verb, tt.arg, tt.ok)
		}
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		s  string
		n  int
		ok bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"007", 7, true},
		{"99999999999", 99999999999, true},
		{"99999999999999999999999", math.MaxInt, true},
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1.0", 0, false},
		{"0x10", 0, false}, {"١", 0, false},
	}
	for _, tt := range tests {
		if n, ok := parseNumber(tt.s); n != tt.n || ok != tt.ok {
			t.Errorf("parseNumber(%q) = %d, %v; want %d, %v", tt.s, n, ok, tt.n, tt.ok)
		}
	}
}

// Seed commands: every command, in good and bad forms.
var seedCommands = []string{
	"CAPA", "QUIT", "USER alice", "PASS secret", "PASS pass word", "AUTH", "AUTH PLAIN",
	"AUTH PLAIN " + plain("", "alice", "secret"), "AUTH PLAIN =", "AUTH LOGIN", "*", "STLS",
	"STAT", "LIST", "LIST 1", "LIST x", "UIDL", "UIDL 2", "RETR 1", "RETR 0",
	"RETR 99999999999", "TOP 1 0", "TOP 3 99999999999999999999", "TOP 1 -1", "DELE 1",
	"RSET", "NOOP", "NOOP x", "", " ", "user alice", "list\t1", "LIST  1",
	"\x00", "\xff\xfe", "RETR 1\r", "USER \x00\r\n", strings.Repeat("A", 300),
}

// FuzzParseCommand checks the command-line parser: no panics, a keyword of
// 1 to 4 upper-case letters, and an argument that is the rest of the line.
func FuzzParseCommand(f *testing.F) {
	for _, c := range seedCommands {
		f.Add(c)
		f.Add(c + "\r\n")
		f.Add(c + "\n")
	}
	f.Fuzz(func(t *testing.T, line string) {
		verb, arg, ok := parseCommand(line)
		if !ok {
			if verb != "" || arg != "" {
				t.Fatalf("parseCommand(%q) failed but returned %q %q", line, verb, arg)
			}
			return
		}
		if len(verb) < 1 || len(verb) > maxVerbLength || strings.ToUpper(verb) != verb {
			t.Fatalf("parseCommand(%q): keyword %q", line, verb)
		}
		for _, c := range verb {
			if c < 'A' || c > 'Z' {
				t.Fatalf("parseCommand(%q): keyword %q", line, verb)
			}
		}
		if !strings.HasPrefix(strings.ToUpper(line), verb) || !strings.Contains(line, arg) {
			t.Fatalf("parseCommand(%q) = %q %q: not taken from the line", line, verb, arg)
		}
		// The argument parsers must not panic on anything either.
		for _, w := range strings.Fields(arg) {
			if n, ok := parseNumber(w); ok && n < 0 {
				t.Fatalf("parseNumber(%q) = %d", w, n)
			}
		}
		fields(arg, 0, 2)
	})
}
