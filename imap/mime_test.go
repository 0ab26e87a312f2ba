package imap

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseMessage: any bytes parse into a structure whose offsets lie
// within the message, and whose BODYSTRUCTURE and ENVELOPE encode.
func FuzzParseMessage(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "messages", "*.eml"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(onWire(b))
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\nno parts at all\r\n"))
	f.Add([]byte("Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n"))
	f.Add([]byte("Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: in digest\r\n\r\nx\r\n--d--"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root, err := parseMessage(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		size := int64(len(data))
		var check func(p *mimePart, depth int)
		check = func(p *mimePart, depth int) {
			if !(0 <= p.hdrOff && p.hdrOff <= p.bodyOff && p.bodyOff <= p.end && p.end <= size) {
				t.Fatalf("offsets %d %d %d of %d", p.hdrOff, p.bodyOff, p.end, size)
			}
			if p.lines < 0 {
				t.Fatalf("lines %d", p.lines)
			}
			for _, c := range p.children {
				check(c, depth+1)
			}
			if p.msg != nil {
				check(p.msg, depth+1)
			}
		}
		check(root, 0)
		// BODYSTRUCTURE, BODY and ENVELOPE encode to balanced lists that
		// the response parser of the tests reads back.
		for _, ext := range []bool{true, false} {
			var buf bytes.Buffer
			o := output{dst: &buf}
			writeBodyStructure(&o, root, ext)
			o.sp()
			writeEnvelope(&o, envelope(root))
			o.flush()
			toks, err := parseTokens(buf.String())
			if err != nil || len(toks) != 2 || toks[0].kind != 'l' || toks[1].kind != 'l' || len(toks[1].l) != 10 {
				t.Fatalf("BODYSTRUCTURE/ENVELOPE %q: %v", buf.String(), err)
			}
		}
		for _, path := range [][]int{{1}, {2}, {1, 1}, {2, 1}, {1, 2, 1}} {
			if p := findPart(root, path); p != nil && (p.bodyOff > size || p.end > size) {
				t.Fatalf("part %v out of range", path)
			}
		}
	})
}

func TestParseParams(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`; charset="utf-8"; format=flowed`, `charset=utf-8 format=flowed`},
		{`; name*=UTF-8''%C3%9Cbersicht.txt`, `name*=UTF-8''%C3%9Cbersicht.txt`},
		{"; filename*0*=UTF-8''%C3%9Cber;\r\n filename*1*=sicht.txt", `filename*=UTF-8''%C3%9Cbersicht.txt`},
		{`; filename*0="a b"; filename*1=".txt"`, `filename=a b.txt`},
		{`; x="quoted \"inner\" ; semicolon"`, `x=quoted "inner" ; semicolon`},
		{`;;; =bad; ok=1; broken`, `ok=1`},
	} {
		var got []string
		for _, p := range parseParams(tc.in) {
			got = append(got, p.key+"="+p.value)
		}
		if g := join(got); g != tc.want {
			t.Errorf("parseParams(%q) = %q, want %q", tc.in, g, tc.want)
		}
	}
}

func join(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

// writeParams keeps the first of a repeated name and sorts by name, the
// short lists in place as the long ones through a map.
func TestWriteParams(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for n := 0; n < 40; n++ {
		for range 50 {
			var ps []param
			for i := 0; i < n; i++ {
				ps = append(ps, param{fmt.Sprint("k", r.IntN(n+1)), fmt.Sprint("v", i)})
			}
			var a, b bytes.Buffer
			o1 := output{dst: &a}
			writeParams(&o1, ps)
			o1.flush()
			o2 := output{dst: &b}
			if len(ps) == 0 {
				o2.nilAtom()
			} else {
				writeManyParams(&o2, ps)
			}
			o2.flush()
			if a.String() != b.String() {
				t.Fatalf("%v: %s, through the map %s", ps, a.String(), b.String())
			}
		}
	}
}
