package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// readWhole gives back exactly what the file holds, read in halves or
// not, also when the file is shorter than the size it was told (cut
// between the stat and the read).
func TestReadWhole(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		file int   // bytes in the file
		told int64 // size passed
	}{
		{len(data), int64(len(data))},
		{len(data), int64(len(data)) - 5}, // grew since the stat: read what was told
		{len(data) - 100, int64(len(data))},
		{1 << 20, int64(len(data))}, // cut below the second half
		{1000, 1000},
		{0, 0},
	} {
		if err := os.WriteFile(p, data[:tc.file], 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readWhole(f, tc.told)
		f.Close()
		want := data[:min(tc.file, int(tc.told))]
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("file %d, told %d: got %d bytes (err %v), want %d", tc.file, tc.told, len(got), err, len(want))
		}
	}
}
