package mailsort

import "testing"

func TestBaseSubject(t *testing.T) {
	tests := []struct {
		raw, base string
		reply     bool
	}{
		{"", "", false},
		{"hello", "hello", false},
		{"Re: foo", "foo", true},
		{"RE: Re: re: foo", "foo", true},
		{"rE: FwD: x", "x", true},
		{"Re:Re:foo", "foo", true},
		{"Re: [list] Fwd: Re: hello", "hello", true},
		{"[list] Re: [other] Fwd[x]: topic", "topic", true},
		{"Re : hello", "hello", true},     // *WSP before ":"
		{"Re[2]: hello", "hello", true},   // subj-blob in subj-refwd
		{"Re [2] : hello", "hello", true}, // blob with its trailing WSP
		{"Fw: hello", "hello", true},
		{"FWD: hello", "hello", true},
		{"Fwdx: hello", "Fwdx: hello", false},
		{"Re hello", "Re hello", false},
		{"Re", "Re", false},
		{"Re:", "", true},
		{"Re: ", "", true},
		{"Re: (fwd)", "", true},
		{"(fwd)", "", true},
		{"hello (fwd)", "hello", true},
		{"hello (FWD) (fwd)  ", "hello", true},
		{"hello(fwd)", "hello", true},
		{"[list] hello", "hello", false},
		{"[list]", "[list]", false}, // step 4 keeps a blob that is all there is
		{"[a] [b]", "[b]", false},   // ...and removes one before it
		{"[a][b] hello", "hello", false},
		{"[] x", "x", false},
		{"[a]b", "b", false},
		{"[list] (fwd)", "[list]", true},
		{"[fwd: hello]", "hello", true},
		{"[FWD: hello]", "hello", true},
		{"[fwd: ]", "", true},
		{"[fwd:", "[fwd:", false},
		{"[fwd: [fwd: x]]", "x", true},
		{"[Fwd: Re: [list] hello (fwd)]", "hello", true},
		{"Re: [fwd: Re: x] (fwd)", "x", true},
		{"Re: Re: [fwd: Re: x (fwd)]", "x", true},
		{"[fwd: a] b", "b", false}, // a blob, not a wrapper: something follows
		{"  leading", "leading", false},
		{"a    b", "a b", false},
		{"tab\there", "tab here", false},
		{"Re: a\r\n\tlong\r\n  subject", "a long subject", true},
		{"=?UTF-8?B?UmU6IGjDqWxsbw==?=", "héllo", true},
		{"=?ISO-8859-1?Q?Re:_caf=E9?=", "café", true},
		{"=?utf-8?q?Re=3A?= hello", "hello", true},
		{"=?utf-8?q?a?= =?utf-8?q?b?=", "ab", false}, // RFC 2047 §6.2: space between words goes
		{"=?x-unknown?q?abc?=", "abc", false},
		{"=?utf-8?q?tab=09here?=", "tab here", false},
		{"=?broken", "=?broken", false},
		{"caf\xe9", "café", false},         // raw Latin-1
		{"Re: \xff\xfe", "ÿþ", true},       // raw 8-bit as Windows-1252
		{"Re: \u00e9t\u00e9", "été", true}, // raw UTF-8 stays
		{"[\u00e9] x", "x", false},
	}
	for _, tt := range tests {
		base, reply := BaseSubject(tt.raw)
		if base != tt.base || reply != tt.reply {
			t.Errorf("BaseSubject(%q) = %q, %v; want %q, %v", tt.raw, base, reply, tt.base, tt.reply)
		}
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "a", -1},
		{"abc", "ABC", 0},
		{"abc", "abd", -1},
		{"ab", "abc", -1},
		{"Zebra", "apple", 1},
		// RFC 4790 §9.2 maps to upper case: "_" (0x5F) sorts after "A".
		{"_", "a", 1},
		{"[", "b", 1},
		// Other bytes compare as they are: no folding beyond ASCII.
		{"é", "É", 1},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := cmpStrings(foldKey(tt.a), foldKey(tt.b)); got != tt.want {
			t.Errorf("foldKey order of %q, %q = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
