package imap

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The real-world message set in testdata/messages, appended with imapclient
// and fetched back: bodies byte for byte, BODYSTRUCTURE and ENVELOPE, every
// kind of section. Sizes and line counts were computed independently of
// the server from the files (split at "CRLF--boundary", RFC 2046 §5.1.1).

// onWire is a file as IMAP sends it: every bare LF becomes CRLF.
func onWire(b []byte) []byte {
	return regexp.MustCompile(`([^\r]|^)\n`).ReplaceAll(bytes.ReplaceAll(b, []byte("\n\n"), []byte("\n\r\n")), []byte("$1\r\n"))
}

func TestOnWire(t *testing.T) {
	if got := string(onWire([]byte("a\nb\r\n\n\nc"))); got != "a\r\nb\r\n\r\n\r\nc" {
		t.Errorf("%q", got)
	}
}

// bsString is a compact BODYSTRUCTURE to compare with.
func bsString(bs imap.BodyStructure) string {
	switch b := bs.(type) {
	case *imap.BodyStructureSinglePart:
		s := fmt.Sprintf("%s/%s%s %s %d", b.Type, b.Subtype, paramString(b.Params), b.Encoding, b.Size)
		if b.Text != nil {
			s += fmt.Sprintf("/%dL", b.Text.NumLines)
		}
		if b.ID != "" {
			s += " id=" + b.ID
		}
		if b.Description != "" {
			s += " desc=" + b.Description
		}
		if m := b.MessageRFC822; m != nil {
			s += fmt.Sprintf(" msg(%q %s)/%dL", m.Envelope.Subject, bsString(m.BodyStructure), m.NumLines)
		}
		if d := b.Disposition(); d != nil {
			s += " " + d.Value + paramString(d.Params)
		}
		return "(" + s + ")"
	case *imap.BodyStructureMultiPart:
		var parts []string
		for _, c := range b.Children {
			parts = append(parts, bsString(c))
		}
		return "(" + strings.Join(parts, "") + " multipart/" + b.Subtype + paramString(b.Extended.Params) + ")"
	}
	return "?"
}

func paramString(p map[string]string) string {
	if len(p) == 0 {
		return ""
	}
	var keys []string
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, ";%s=%s", k, p[k])
	}
	return b.String()
}

func addrs(l []imap.Address) string {
	var out []string
	for _, a := range l {
		switch {
		case a.IsGroupStart():
			out = append(out, "group("+a.Mailbox+")")
		case a.IsGroupEnd():
			out = append(out, "end")
		default:
			out = append(out, fmt.Sprintf("%s<%s@%s>", a.Name, a.Mailbox, a.Host))
		}
	}
	return strings.Join(out, ", ")
}

type sectionCase struct {
	name string
	item *imap.FetchItemBodySection
	want string
}

type binaryCase struct {
	part []int
	want string
}

type messageCase struct {
	file     string
	bs       string
	env      string // subject | from | to | cc | bcc | in-reply-to | message-id
	date     string
	sections []sectionCase
	binaries []binaryCase
}

var messageCases = []messageCase{
	{
		file: "01-alternative.eml",
		bs:   "((text/plain;charset=UTF-8 quoted-printable 116/4L)(text/html;charset=UTF-8 quoted-printable 126/2L) multipart/alternative;boundary=----=_Part_123_456.789)",
		env:  "Your March offers | Shop Example<news@shop.example.com> | <alice@example.net> |  |  |  | 20260302091500.abc123@shop.example.com",
		date: "2026-03-02T09:15:00+01:00",
		sections: []sectionCase{
			{"1", &imap.FetchItemBodySection{Part: []int{1}}, "Hello Alice,\r\n\r\nour March offers: 20% off everything. Caf=C3=A9 mugs included.\r\nSee https://shop.example.com/march\r\n"},
			{"2.MIME", &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierMIME}, "Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"},
			{"HEADER.FIELDS (Subject From)", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "FROM"}}, "From: \"Shop Example\" <news@shop.example.com>\r\nSubject: Your March offers\r\n\r\n"},
			{"HEADER.FIELDS (Content-Type) folded", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"content-type"}}, "Content-Type: multipart/alternative;\r\n boundary=\"----=_Part_123_456.789\"\r\n\r\n"},
			{"HEADER.FIELDS (X-None)", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"X-None"}}, "\r\n"},
			{"1<6.5>", &imap.FetchItemBodySection{Part: []int{1}, Partial: &imap.SectionPartial{Offset: 6, Size: 5}}, "Alice"},
			{"1<109.100> runs past the end", &imap.FetchItemBodySection{Part: []int{1}, Partial: &imap.SectionPartial{Offset: 109, Size: 100}}, "march\r\n"},
			{"1<5000.10> starts past the end", &imap.FetchItemBodySection{Part: []int{1}, Partial: &imap.SectionPartial{Offset: 5000, Size: 10}}, ""},
			{"3 does not exist", &imap.FetchItemBodySection{Part: []int{3}}, ""},
		},
		binaries: []binaryCase{
			{[]int{1}, "Hello Alice,\r\n\r\nour March offers: 20% off everything. Café mugs included.\r\nSee https://shop.example.com/march\r\n"},
			{[]int{2}, "<html><body><p>Hello Alice,</p><p>our March offers: <b>20% off</b> everything. Café mugs included.</p></body></html>\r\n"},
		},
	},
	{
		file: "02-attachment.eml",
		bs:   "((text/plain;charset=us-ascii 7bit 43/5L)(application/pdf;name=report.pdf base64 64 id=<part2.report@example.org> desc=Quarterly report attachment;filename=report.pdf;size=40) multipart/mixed;boundary=mixed-b1)",
		env:  "Report attached | Bob Builder<bob@example.org> | Alice<alice@example.net>, Carol, C.<carol@example.net> | <team@example.org> |  | question-17@example.net | report-2026-03@example.org",
		date: "2026-03-03T14:22:10-05:00",
		sections: []sectionCase{
			{"1", &imap.FetchItemBodySection{Part: []int{1}}, "Hi Alice,\r\n\r\nthe report is attached.\r\n\r\nBob"},
			{"HEADER.FIELDS.NOT", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Date", "From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References"}}, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mixed-b1\"\r\n\r\n"},
		},
		binaries: []binaryCase{{[]int{2}, "%PDF-1.4\n%\xc7\xec\x8f\xa2\n1 0 obj\n<</Type/Catalog>>\nendobj\n"}},
	},
	{
		file: "03-forward.eml",
		bs:   `((text/plain;charset=utf-8 7bit 12/1L)(message/rfc822 7bit 386 msg("Lunch?" ((text/plain;charset=us-ascii 7bit 14/1L)(text/html;charset=us-ascii 7bit 21/1L) multipart/alternative;boundary=inner))/17L inline) multipart/mixed;boundary=outer)`,
		env:  "Fwd: Lunch? | Carol<carol@example.net> | <alice@example.net> |  |  |  | fwd-lunch@example.net",
		date: "2026-03-04T08:00:00Z",
		sections: []sectionCase{
			{"2.HEADER", &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierHeader}, "Date: Tue, 03 Mar 2026 12:00:00 +0100\r\nFrom: Dave <dave@example.com>\r\nTo: Carol <carol@example.net>\r\nSubject: Lunch?\r\nMessage-ID: <lunch@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"},
			{"2.HEADER.FIELDS (Subject)", &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}}, "Subject: Lunch?\r\n\r\n"},
			{"2.TEXT", &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierText}, "--inner\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nLunch at noon?\r\n--inner\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>Lunch at noon?</p>\r\n--inner--\r\n"},
			{"2.1", &imap.FetchItemBodySection{Part: []int{2, 1}}, "Lunch at noon?"},
			{"2.2", &imap.FetchItemBodySection{Part: []int{2, 2}}, "<p>Lunch at noon?</p>"},
			{"2.1.MIME", &imap.FetchItemBodySection{Part: []int{2, 1}, Specifier: imap.PartSpecifierMIME}, "Content-Type: text/plain; charset=us-ascii\r\n\r\n"},
			{"2.MIME", &imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierMIME}, "Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"},
			{"1.HEADER of a text part", &imap.FetchItemBodySection{Part: []int{1}, Specifier: imap.PartSpecifierHeader}, ""},
		},
	},
	{
		file: "04-encoded.eml",
		bs:   "((text/plain;charset=ISO-8859-1 quoted-printable 21/1L)(text/plain;charset=UTF-8;name*=UTF-8''%C3%9Cbersicht.txt base64 16/1L attachment;filename*=UTF-8''%C3%9Cbersicht.txt) multipart/mixed;boundary=simple)",
		env:  "Grüße aus Köln and mehr € | Jürgen Müller<juergen@example.de> | group(undisclosed-recipients), end |  | group(Friends), <eve@example.org>, Frank<frank@example.org>, end |  | enc-1@example.de",
		date: "2026-03-05T10:30:00+01:00",
		binaries: []binaryCase{
			{[]int{1}, "Gr\xfc\xdfe aus K\xf6ln!"},
			{[]int{2}, "Übersicht\r\n"},
		},
	},
	{
		file:     "05-8bit.eml",
		bs:       "(text/plain;charset=utf-8 8bit 59/3L)",
		env:      "Grüße aus München | Bärbel Schmidt<baerbel@example.de> | Zoë<zoe@example.net> |  |  |  | 8bit-1@example.de",
		date:     "2026-03-06T18:45:00+01:00",
		sections: []sectionCase{{"TEXT", &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}, "Liebe Zoë,\r\n\r\nschöne Grüße aus München – bis bald!\r\n"}},
		binaries: []binaryCase{{[]int{1}, "Liebe Zoë,\r\n\r\nschöne Grüße aus München – bis bald!\r\n"}},
	},
	{
		file: "06-lf-only.eml",
		bs:   "(text/plain;charset=us-ascii 7bit 75/2L)",
		env:  "[list] LF-only file | Example List<list@lists.example.com> | <alice@example.net> |  |  |  | lf-only@lists.example.com",
		date: "2026-03-07T07:07:07Z",
		sections: []sectionCase{
			{"1", &imap.FetchItemBodySection{Part: []int{1}}, "This file has LF line ends on disk.\r\nOn the wire every line ends in CRLF.\r\n"},
			{"<0.20>", &imap.FetchItemBodySection{Partial: &imap.SectionPartial{Offset: 0, Size: 20}}, "Return-Path: <list@l"},
		},
	},
	{
		file: "07-no-mime.eml",
		bs:   "(text/plain;charset=us-ascii 7bit 53/1L)",
		env:  "no MIME at all | <old@example.com> |  |  |  |  | ",
		date: "0001-01-01T00:00:00Z",
	},
}

func TestMessages(t *testing.T) {
	e := newEnv(t)
	c := e.client("alice", nil)
	date := time.Date(2026, 3, 9, 10, 11, 12, 0, time.FixedZone("", 3600))
	files := map[uint32]messageCase{}
	for _, mc := range messageCases {
		raw := readFile(t, filepath.Join("testdata", "messages", mc.file))
		cmd := c.Append("INBOX", int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen, "$Label1"}, Time: date})
		cmd.Write(raw)
		cmd.Close()
		data := must[*imap.AppendData](t)(cmd.Wait())
		files[uint32(data.UID)] = mc
	}
	must[*imap.SelectData](t)(c.Select("INBOX", nil).Wait())

	for uid, mc := range files {
		t.Run(mc.file, func(t *testing.T) {
			wire := onWire(readFile(t, filepath.Join("testdata", "messages", mc.file)))
			opts := &imap.FetchOptions{
				UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
				BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
				BodySection:   []*imap.FetchItemBodySection{{Peek: true}},
			}
			for _, sc := range mc.sections {
				sc.item.Peek = true
				opts.BodySection = append(opts.BodySection, sc.item)
			}
			for _, bc := range mc.binaries {
				opts.BinarySection = append(opts.BinarySection, &imap.FetchItemBinarySection{Part: bc.part, Peek: true})
				opts.BinarySectionSize = append(opts.BinarySectionSize, &imap.FetchItemBinarySectionSize{Part: bc.part})
			}
			msgs := must[[]*imapclient.FetchMessageBuffer](t)(c.Fetch(imap.UIDSetNum(imap.UID(uid)), opts).Collect())
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			m := msgs[0]
			if got := m.FindBodySection(&imap.FetchItemBodySection{Peek: true}); !bytes.Equal(got, wire) {
				t.Errorf("BODY[] differs from the file:\n got %q\nwant %q", got, wire)
			}
			if m.RFC822Size != int64(len(wire)) {
				t.Errorf("RFC822.SIZE %d, want %d", m.RFC822Size, len(wire))
			}
			if !m.InternalDate.Equal(date) {
				t.Errorf("INTERNALDATE %v, want %v", m.InternalDate, date)
			}
			if fmt.Sprint(m.Flags) != `[\Seen $Label1 \Recent]` { // appended before the SELECT
				t.Errorf("FLAGS %v", m.Flags)
			}
			if got := bsString(m.BodyStructure); got != mc.bs {
				t.Errorf("BODYSTRUCTURE\n got %s\nwant %s", got, mc.bs)
			}
			env := m.Envelope
			gotEnv := strings.Join([]string{env.Subject, addrs(env.From), addrs(env.To), addrs(env.Cc), addrs(env.Bcc), strings.Join(env.InReplyTo, " "), env.MessageID}, " | ")
			if gotEnv != mc.env {
				t.Errorf("ENVELOPE\n got %s\nwant %s", gotEnv, mc.env)
			}
			if got := env.Date.Format(time.RFC3339); got != mc.date {
				t.Errorf("ENVELOPE date %s, want %s", got, mc.date)
			}
			for _, sc := range mc.sections {
				if got := m.FindBodySection(sc.item); string(got) != sc.want {
					t.Errorf("BODY[%s]\n got %q\nwant %q", sc.name, got, sc.want)
				}
			}
			for _, bc := range mc.binaries {
				if got := m.FindBinarySection(&imap.FetchItemBinarySection{Part: bc.part, Peek: true}); string(got) != bc.want {
					t.Errorf("BINARY[%v]\n got %q\nwant %q", bc.part, got, bc.want)
				}
				if n, ok := m.FindBinarySectionSize(bc.part); !ok || int(n) != len(bc.want) {
					t.Errorf("BINARY.SIZE[%v] = %d, want %d", bc.part, n, len(bc.want))
				}
			}
		})
	}
}

func TestMessageFilesAreWhatTheTestsSay(t *testing.T) {
	// The LF-only file must stay LF-only, the others CRLF.
	for _, mc := range messageCases {
		b, err := os.ReadFile(filepath.Join("testdata", "messages", mc.file))
		if err != nil {
			t.Fatal(err)
		}
		lf := !bytes.Contains(b, []byte("\r\n"))
		if lf != strings.Contains(mc.file, "lf-only") {
			t.Errorf("%s: LF-only is %v", mc.file, lf)
		}
	}
}
