package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/letterbox-mail/letterbox/auth"
)

// runGen writes users' Maildirs the way Dovecot leaves them (sizes in the
// names, a dovecot-uidlist) and a passwd-file both servers can read, so
// Letterbox and Dovecot are measured on identical data.
func runGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	dir := fs.String("dir", "", "output directory: DIR/<user>/Maildir and DIR/passwd")
	users := fs.Int("users", 10, "number of users (PREFIX1, PREFIX2, …)")
	prefix := fs.String("prefix", "load", "user names' prefix")
	msgs := fs.Int("messages", 1000, "messages in each INBOX")
	size := fs.Int("size", 4000, "average body size in bytes")
	password := fs.String("password", "loadtest", "every user's password")
	fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("need -dir")
	}
	hash, err := auth.HashPassword(*password, 0)
	if err != nil {
		return err
	}
	var passwd strings.Builder
	rng := rand.New(rand.NewPCG(1, 2))
	for u := 1; u <= *users; u++ {
		name := fmt.Sprintf("%s%d", *prefix, u)
		fmt.Fprintf(&passwd, "%s:%s\n", name, hash)
		if err := genMaildir(filepath.Join(*dir, name, "Maildir"), *msgs, *size, rng); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(*dir, "passwd"), []byte(passwd.String()), 0o600)
}

func genMaildir(root string, n, size int, rng *rand.Rand) error {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o700); err != nil {
			return err
		}
	}
	ul, err := os.Create(filepath.Join(root, "dovecot-uidlist"))
	if err != nil {
		return err
	}
	defer ul.Close()
	w := bufio.NewWriter(ul)
	fmt.Fprintf(w, "3 V1700000000 N%d G%032x\n", n+1, rng.Uint64())
	line := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 2) + "\n"
	for i := 1; i <= n; i++ {
		var b strings.Builder
		fmt.Fprintf(&b, "From: Sender %d <sender%d@example.org>\nTo: user@example.org\nSubject: Load test message %d\nDate: Mon, 2 Nov 2026 10:%02d:00 +0000\nMessage-ID: <%d.%d@load.example>\nContent-Type: text/plain; charset=utf-8\n\n", i%97, i%97, i, i%60, i, rng.Uint32())
		for body := rng.IntN(2*size) + 1; body > 0; body -= len(line) {
			b.WriteString(line)
		}
		msg := b.String()
		crlf := len(msg) + strings.Count(msg, "\n")
		base := fmt.Sprintf("%d.M%dP%d.load,S=%d,W=%d", 1700000000+i, i, 1000+i%50, len(msg), crlf)
		flags := ""
		if i%3 != 0 {
			flags = "S"
		}
		if err := os.WriteFile(filepath.Join(root, "cur", base+":2,"+flags), []byte(msg), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(w, "%d :%s\n", i, base)
	}
	return w.Flush()
}
