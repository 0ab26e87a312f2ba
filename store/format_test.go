package store

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

func TestMUTF7(t *testing.T) {
	for utf, enc := range map[string]string{
		"Entwürfe":   "Entw&APw-rfe",
		"Ärger & Co": "&AMQ-rger &- Co",
		"&":          "&-",
		"日本語":        "&ZeVnLIqe-",
		"Sent":       "Sent",
		"😀 x":        "&2D3eAA- x",
	} {
		if got := EncodeMUTF7(utf); got != enc {
			t.Errorf("encode(%q) = %q, want %q", utf, got, enc)
		}
		if got, err := DecodeMUTF7(enc); err != nil || got != utf {
			t.Errorf("decode(%q) = %q, %v; want %q", enc, got, err, utf)
		}
	}
	for _, bad := range []string{"&", "&Jjo", "a\x80", "&AGE-" /* encoded ASCII */, "&2D0-" /* lone surrogate */} {
		if got, err := DecodeMUTF7(bad); err == nil {
			t.Errorf("decode(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"Entwürfe", "&AMQ-rger &- Co", "&", "日本語", "a&-b", "&2D3eAA-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if utf8.ValidString(s) {
			enc := EncodeMUTF7(s)
			dec, err := DecodeMUTF7(enc)
			if err != nil || dec != s {
				t.Fatalf("round trip of %q: %q via %q, %v", s, dec, enc, err)
			}
		}
		if dec, err := DecodeMUTF7(s); err == nil {
			if !utf8.ValidString(dec) {
				t.Fatalf("decode(%q) is not UTF-8", s)
			}
		}
	})
}

func FuzzFolderName(f *testing.F) {
	for _, s := range []string{"INBOX", "Archive/2026", "../etc", "a.b", "Ärger & Co", "/x", "a//b", "x\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		dir, err := folderDir(name)
		if err != nil {
			return
		}
		if IsInbox(name) {
			if dir != "" {
				t.Fatalf("INBOX maps to %q", dir)
			}
			return
		}
		// A valid name is one directory entry, hidden, inside the root,
		// and maps back to itself.
		if dir == "" || dir[0] != '.' || strings.ContainsAny(dir, "/\x00") || dir == "." || dir == ".." || len(dir) > maxDirName {
			t.Fatalf("name %q maps to unsafe dir %q", name, dir)
		}
		back, ok := dirName(dir)
		if !ok || back != CanonicalName(name) {
			t.Fatalf("name %q → %q → %q, %v", name, dir, back, ok)
		}
	})
}

func FuzzParseUidlist(f *testing.F) {
	f.Add([]byte("3 V1795677296 N19 Gd9ba63136edc076b587a000083ecc375\n1 :1795677294.M366766P31320.vm,S=635,W=656\n13 W769 S752 :1795161600.V803I1a2b3cM123456.mx\n"))
	f.Add([]byte("1 1234 5\n1 abc:2,S\n2 def\n"))
	f.Add([]byte("3 V1 N1\n"))
	f.Add([]byte("3 V0\n"))
	f.Add([]byte("3 V5 N2 X\n2 :a\n1 :b\nx :c\n4 W :d\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ul, _, err := parseUidlist(data)
		if err != nil {
			return
		}
		// What we parse we can write, and it reads back the same.
		again, bad, err := parseUidlist(ul.marshal())
		if err != nil || bad != 0 {
			t.Fatalf("re-parse: %v, %d bad lines", err, bad)
		}
		if again.uidValidity != ul.uidValidity || len(again.entries) != len(ul.entries) {
			t.Fatalf("round trip changed the list")
		}
		for i := range ul.entries {
			if again.entries[i] != ul.entries[i] {
				t.Fatalf("entry %d: %+v became %+v", i, ul.entries[i], again.entries[i])
			}
		}
	})
}

func TestParseUidlistSkipsBadLines(t *testing.T) {
	ul, bad, err := parseUidlist([]byte("3 V7 N3 Gabc\n1 :a\nnot a line\n1 :dup\n2 W10 :b,S=5:2,S\n"))
	if err != nil {
		t.Fatal(err)
	}
	if bad != 2 || len(ul.entries) != 2 || ul.entries[1].base != "b,S=5" || ul.entries[1].ext != "W10" {
		t.Errorf("got %+v, %d bad", ul.entries, bad)
	}
	if _, _, err := parseUidlist([]byte("9 V1\n")); err == nil {
		t.Error("unknown version accepted")
	}
}

func TestFileNames(t *testing.T) {
	base, info := splitName("1795677294.M366766P31320.vm,S=635,W=656:2,FSd")
	if base != "1795677294.M366766P31320.vm,S=635,W=656" || info != "FSd" {
		t.Fatalf("split: %q %q", base, info)
	}
	f, kw := parseInfo(info)
	if f != FlagFlagged|FlagSeen || kw != 1<<3 {
		t.Errorf("flags %b kw %b", f, kw)
	}
	if got := curName(base, FlagSeen|FlagDeleted|FlagAnswered, 1|1<<2); got != base+":2,RSTac" {
		t.Errorf("curName = %q", got)
	}
	if n, ok := baseSize(base, 'W'); !ok || n != 656 {
		t.Errorf("W = %d %v", n, ok)
	}
	if _, ok := baseSize("1795161600.V803I1a2b3cM123456.mx", 'W'); ok {
		t.Error("W found in a name without one")
	}
}

func TestCRLFReader(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb\n":       "a\r\nb\r\n",
		"a\r\nb\r\n":   "a\r\nb\r\n",
		"\n\n":         "\r\n\r\n",
		"a\rb\n":       "a\rb\r\n",
		"x\r\n\ny\r\r": "x\r\n\r\ny\r\r",
		"":             "",
	} {
		// One byte at a time puts every CR and LF at a read boundary.
		got, err := io.ReadAll(newCRLFReader(iotest.OneByteReader(strings.NewReader(in))))
		if err != nil || string(got) != want {
			t.Errorf("%q → %q, want %q (%v)", in, got, want, err)
		}
		var c crlfCounter
		c.Write([]byte(in))
		if c.n != int64(len(want)) {
			t.Errorf("count of %q = %d, want %d", in, c.n, len(want))
		}
	}
}

func FuzzCRLF(f *testing.F) {
	f.Add([]byte("a\nb\r\nc\r"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		var c crlfCounter
		for i := 0; i < len(data); i += int(chunk) + 1 {
			c.Write(data[i:min(len(data), i+int(chunk)+1)])
		}
		out, _ := io.ReadAll(newCRLFReader(iotest.HalfReader(bytes.NewReader(data))))
		if int64(len(out)) != c.n {
			t.Fatalf("reader gave %d bytes, counter says %d", len(out), c.n)
		}
		if bytes.Contains(bytes.ReplaceAll(out, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("bare LF left in %q", out)
		}
		e := &exactReader{r: bytes.NewReader(out), left: c.n + 3}
		padded, _ := io.ReadAll(e)
		if int64(len(padded)) != c.n+3 {
			t.Fatalf("exactReader gave %d bytes, want %d", len(padded), c.n+3)
		}
	})
}
