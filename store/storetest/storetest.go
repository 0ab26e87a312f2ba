// Package storetest gives tests a real Maildir to work on: a copy of the
// store Dovecot 2.3 wrote in testdata/dovecot-maildir (see its README.md),
// with Dovecot's own answers for it.
package storetest

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// FixtureDir is the directory of the Dovecot fixture: Maildir.tar.gz,
// manifest.json and golden/.
func FixtureDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "dovecot-maildir")
}

// Golden returns one of Dovecot's recorded answers, by path under golden/.
func Golden(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(FixtureDir(), "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Manifest decodes manifest.json into v.
func Manifest(t testing.TB, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(FixtureDir(), "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

// DovecotMaildir extracts the fixture into dir (which must exist) as
// dir/Maildir, keeping the nanosecond mtimes (INTERNALDATE) and the hard
// link, and returns the Maildir path. Files are made writable by the owner.
func DovecotMaildir(t testing.TB, dir string) string {
	t.Helper()
	if err := extract(filepath.Join(FixtureDir(), "Maildir.tar.gz"), dir); err != nil {
		t.Fatalf("extract fixture: %v", err)
	}
	return filepath.Join(dir, "Maildir")
}

// UserMaildir lays the fixture out as user "fixture" under a path template
// "<dir>/{user}/Maildir" and returns the template.
func UserMaildir(t testing.TB, dir string) string {
	t.Helper()
	userDir := filepath.Join(dir, "fixture")
	if err := os.MkdirAll(userDir, 0o700); err != nil {
		t.Fatal(err)
	}
	DovecotMaildir(t, userDir)
	return filepath.Join(dir, "{user}", "Maildir")
}

func extract(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	type dirTime struct {
		path string
		h    *tar.Header
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			return fmt.Errorf("bad path %q in fixture", h.Name)
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{p, h})
		case tar.TypeReg:
			out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
			if err := os.Chtimes(p, h.ModTime, h.ModTime); err != nil {
				return err
			}
		case tar.TypeLink:
			if err := os.Link(filepath.Join(dir, filepath.Clean(h.Linkname)), p); err != nil {
				return err
			}
		}
	}
	// Directory mtimes last: creating files changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Chtimes(dirs[i].path, dirs[i].h.ModTime, dirs[i].h.ModTime)
	}
	return nil
}
