package main

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHash(t *testing.T) {
	e := newTestEnv(t)
	r := e.must("correct horse\n", "hash", "--password-stdin", "--cost", "5")
	h, ok := strings.CutPrefix(strings.TrimSuffix(r.stdout, "\n"), "{BLF-CRYPT}$2y$05$")
	if !ok {
		t.Fatalf("hash output %q, want {BLF-CRYPT}$2y$05$...", r.stdout)
	}
	if err := bcrypt.CompareHashAndPassword([]byte("$2y$05$"+h), []byte("correct horse")); err != nil {
		t.Errorf("hash does not verify: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte("$2y$05$"+h), []byte("wrong")); err == nil {
		t.Error("hash verifies a wrong password")
	}
	if r.stderr != "" {
		t.Errorf("stderr %q", r.stderr)
	}

	if r := e.run("\n", "hash", "--password-stdin"); r.code != exitDataErr {
		t.Errorf("empty password: exit %d", r.code)
	}
}
