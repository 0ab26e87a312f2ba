package imap

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/letterbox-mail/letterbox/imap/internal/mailsort"
)

// cacheItemsOf parses a message and makes its four cache items.
func cacheItemsOf(t testing.TB, raw []byte, asked ...string) (*parsed, [4][]byte) {
	t.Helper()
	p, err := parseFile(bytes.NewReader(raw), true)
	if err != nil {
		t.Fatal(err)
	}
	_, put := p.items([4]bool{true, true, true, true}, nil, asked)
	var out [4][]byte
	for _, it := range put {
		out[it.Key-keyHeader] = it.Value
	}
	return p, out
}

// render writes what a client would be sent from a tree and an envelope.
func render(root *mimePart, env *envelopeData) string {
	var buf bytes.Buffer
	o := output{dst: &buf}
	writeBodyStructure(&o, root, true)
	o.sp()
	writeBodyStructure(&o, root, false)
	o.sp()
	writeEnvelope(&o, env)
	o.flush()
	return buf.String()
}

// TestCacheItemsRoundTrip: what is answered from the items equals what is
// answered from the parsed file, for every test message: BODYSTRUCTURE,
// BODY, ENVELOPE, the SORT keys, and HEADER.FIELDS of the fields kept.
func TestCacheItemsRoundTrip(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "messages", "*.eml"))
	if len(files) == 0 {
		t.Fatal("no test messages")
	}
	for _, file := range files {
		raw := onWire(readFile(t, file))
		p, items := cacheItemsOf(t, raw, "X-Extra", "Received")
		for i, v := range items {
			if v == nil {
				t.Fatalf("%s: item %d not made", file, i)
			}
		}
		head, err := decodeHeaderItem(items[0])
		if err != nil {
			t.Fatalf("%s: header item: %v", file, err)
		}
		env, err := decodeEnvelope(items[1])
		if err != nil {
			t.Fatalf("%s: envelope item: %v", file, err)
		}
		var keys mailsort.Keys
		if err := decodeSortKeys(items[2], &keys); err != nil {
			t.Fatalf("%s: keys item: %v", file, err)
		}
		tree, err := decodeStructure(items[3])
		if err != nil {
			t.Fatalf("%s: structure item: %v", file, err)
		}
		if got, want := render(tree, env), render(p.root, envelope(p.root)); got != want {
			t.Errorf("%s: from the cache\n %s\nfrom the file\n %s", file, got, want)
		}
		if want := keysOf(p.root); !reflect.DeepEqual(keys, want) {
			t.Errorf("%s: keys %+v, want %+v", file, keys, want)
		}
		if head.bodyOff != p.root.bodyOff || !head.kept || !reflect.DeepEqual(head.extra, []string{"x-extra", "received"}) {
			t.Errorf("%s: header item %d %v %q", file, head.bodyOff, head.kept, head.extra)
		}
		for _, names := range [][]string{
			{"From", "To", "Cc", "Subject", "Date"},
			{"message-id", "REFERENCES", "in-reply-to", "Content-Type"},
			{"Received", "x-extra", "X-Priority"},
		} {
			if !head.covers(need{fields: names}.withLower().lower) {
				t.Errorf("%s: %q not covered", file, names)
				continue
			}
			if got, want := head.filter(names), filterHeader(p.header, names, false); !bytes.Equal(got, want) {
				t.Errorf("%s: HEADER.FIELDS %q from the cache %q, from the file %q", file, names, got, want)
			}
		}
		if head.covers([]string{"x-other"}) {
			t.Errorf("%s: covers a field it does not keep", file)
		}
	}
}

// TestHeaderItemWalk: fields kept answer HEADER.FIELDS as the whole header
// does, on headers that are not well formed.
func TestHeaderItemWalk(t *testing.T) {
	for _, raw := range []string{
		" leading continuation\r\nSubject: a\r\n\r\n",
		"no colon line\r\n continued\r\nSubject: b\r\n folded\r\n\r\n",
		"Subject : spaced name\r\nSUBJECT: again\r\nFrom:x\n\tlf fold\nTo: y\r\n\r\n",
		"\u212Aeywords: kelvin\r\nKeywords: plain\r\n\r\n",
		"Subject: no blank line at the end",
	} {
		kept, ok := keptFieldsOf([]byte(raw), []string{"keywords"})
		if !ok {
			t.Fatalf("%q: not kept", raw)
		}
		h := &headItem{kept: true, fields: kept}
		for _, names := range [][]string{{"subject"}, {"From", "to"}, {"keywords"}, {"Subject", "Keywords"}} {
			if got, want := h.filter(names), filterHeader([]byte(raw), names, false); !bytes.Equal(got, want) {
				t.Errorf("%q %q: from the kept fields %q, from the header %q", raw, names, got, want)
			}
		}
		// SEARCH HEADER sees the same fields of those names.
		var want []headerField
		for _, f := range allFields([]byte(raw)) {
			if headerFieldSet[f.name] || f.name == "keywords" {
				want = append(want, f)
			}
		}
		if got := h.allFields(); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: SEARCH fields %q, want %q", raw, got, want)
		}
	}
}

// FuzzCacheItems: any bytes under any of the keys decode into something
// that answers without a panic, or are refused; what decodes encodes
// back to what decodes the same.
func FuzzCacheItems(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "messages", "*.eml"))
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		_, items := cacheItemsOf(f, onWire(raw), "X-Extra")
		for i, v := range items {
			f.Add(byte(i), v)
		}
	}
	f.Add(byte(0), []byte{cacheVersion, 0x80})
	f.Add(byte(3), []byte{cacheVersion, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(byte(1), []byte{2})
	f.Fuzz(func(t *testing.T, which byte, v []byte) {
		switch which % 4 {
		case 0:
			h, err := decodeHeaderItem(v)
			if err != nil {
				return
			}
			h.covers([]string{"from", "x-other"})
			h.filter([]string{"subject", "X-Other"})
			h.allFields()
			again, err := decodeHeaderItem(encodeHeaderItem(h))
			if err != nil || !reflect.DeepEqual(again, h) {
				t.Fatalf("header item %+v re-encodes to %+v, %v", h, again, err)
			}
		case 1:
			env, err := decodeEnvelope(v)
			if err != nil {
				return
			}
			render(&mimePart{typ: "text", sub: "plain"}, env)
			again, err := decodeEnvelope(encodeEnvelope(env))
			if err != nil || !reflect.DeepEqual(again, env) {
				t.Fatalf("envelope %+v re-encodes to %+v, %v", env, again, err)
			}
		case 2:
			var k mailsort.Keys
			if decodeSortKeys(v, &k) != nil {
				return
			}
			var again mailsort.Keys
			if err := decodeSortKeys(encodeSortKeys(&k), &again); err != nil || !reflect.DeepEqual(again, k) {
				t.Fatalf("keys %+v re-encode to %+v, %v", k, again, err)
			}
		case 3:
			root, err := decodeStructure(v)
			if err != nil {
				return
			}
			render(root, &envelopeData{})
			findPart(root, []int{1, 2, 1})
			var check func(p *mimePart)
			check = func(p *mimePart) {
				if !(0 <= p.hdrOff && p.hdrOff <= p.bodyOff && p.bodyOff <= p.end) || p.lines < 0 {
					t.Fatalf("offsets %d %d %d, %d lines", p.hdrOff, p.bodyOff, p.end, p.lines)
				}
				for _, c := range p.children {
					check(c)
				}
				if p.msg != nil {
					check(p.msg)
				}
			}
			check(root)
			again, err := decodeStructure(encodeStructure(root))
			if err != nil || render(again, &envelopeData{}) != render(root, &envelopeData{}) {
				t.Fatalf("structure re-encodes to %v, %v", again, err)
			}
		}
	})
}
