package mailsort

import (
	"slices"
	"testing"
)

func TestMessageIDs(t *testing.T) {
	tests := []struct {
		raw  string
		want []string
	}{
		{"", nil},
		{"<a@b>", []string{"a@b"}},
		// RFC 5256 §3: quoting must not make two IDs differ.
		{`<"01KF8JCEOCBS0045PS"@xxx.yyy.com>`, []string{"01KF8JCEOCBS0045PS@xxx.yyy.com"}},
		{"(c) < (c) foo (c) @ (c) bar (c) > (c)", []string{"foo@bar"}},
		{`<"foo 2"@bar>`, []string{"foo 2@bar"}},
		{`<"a\"b"@c>`, []string{`a"b@c`}},
		{`<"a>b"@c>`, []string{"a>b@c"}},
		{"<a\r\n @b>", []string{"a@b"}},
		{"<a@[192.0.2.1]>", []string{"a@[192.0.2.1]"}},
		{"<a@b>,skipped,<c@d>", []string{"a@b", "c@d"}},
		{"<a@b>\r\n\t<c@d> <e@f>", []string{"a@b", "c@d", "e@f"}},
		{"<<a@b>", []string{"a@b"}},
		{"<A@B> <a@b>", []string{"A@B", "a@b"}}, // case matters
		// Invalid IDs are skipped.
		{"<foo>", nil},
		{"<@bar>", nil},
		{"<foo@>", nil},
		{"<>", nil},
		{"<a@b", nil},
		{"a@b", nil},
		{"<foo> <a@b>", []string{"a@b"}},
	}
	for _, tt := range tests {
		if got := MessageIDs(tt.raw); !slices.Equal(got, tt.want) {
			t.Errorf("MessageIDs(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
	if got := MessageID("<x@y> <z@w>"); got != "x@y" {
		t.Errorf("MessageID takes the first: %q", got)
	}
	if got := MessageID("<none>"); got != "" {
		t.Errorf("MessageID(<none>) = %q", got)
	}
}

func TestReferences(t *testing.T) {
	tests := []struct {
		refs, irt string
		want      []string
	}{
		{"", "", nil},
		{"<a@b> <c@d>", "<z@w>", []string{"a@b", "c@d"}},
		// RFC 5256 §3: In-Reply-To only when References has no valid ID,
		// and then only its first.
		{"", "<x@y> <z@w>", []string{"x@y"}},
		{"garbage <no-at>", "<x@y>", []string{"x@y"}},
		{"", `Your message of "Mon, 1 Jan 2001" <foo@bar.example>`, []string{"foo@bar.example"}},
		{"", "<foo@bar.example> (Joe's message of Monday)", []string{"foo@bar.example"}},
		{"", "Joe's message of Monday", nil},
	}
	for _, tt := range tests {
		if got := References(tt.refs, tt.irt); !slices.Equal(got, tt.want) {
			t.Errorf("References(%q, %q) = %q, want %q", tt.refs, tt.irt, got, tt.want)
		}
	}
}
