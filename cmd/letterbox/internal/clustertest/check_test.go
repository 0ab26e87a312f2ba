package clustertest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
)

var allFolders = []string{"INBOX", folderCopies, folderMoved}

// expectation is the final state the workers' acknowledged commands imply.
type expectation struct {
	live   map[string]map[string]*tracked // folder → Message-ID → message
	gone   map[string]map[string]bool     // folder → ids expunged or moved away
	unsure map[string]bool                // ids whose fate is unknown
}

func expect(workers []*worker) *expectation {
	e := &expectation{live: make(map[string]map[string]*tracked), gone: make(map[string]map[string]bool), unsure: make(map[string]bool)}
	for _, f := range allFolders {
		e.live[f], e.gone[f] = make(map[string]*tracked), make(map[string]bool)
	}
	for _, w := range workers {
		for _, m := range w.msgs {
			switch {
			case m.unsure:
				e.unsure[m.id] = true
			case m.gone:
				e.gone[m.folder][m.id] = true
			default:
				e.live[m.folder][m.id] = m
			}
		}
	}
	return e
}

// count is how many messages the expectation holds, for the log.
func (e *expectation) count() (live, gone, unsure int) {
	for _, f := range allFolders {
		live += len(e.live[f])
		gone += len(e.gone[f])
	}
	return live, gone, len(e.unsure)
}

// checkSnapshots compares the snapshots of one folder from every instance
// with each other and with the expectation.
func checkSnapshots(prob *problems, e *expectation, folder string, snaps []*snapshot) {
	ref := snaps[0]
	refByUID := make(map[imap.UID]fetched)
	for _, m := range ref.msgs {
		refByUID[m.uid] = m
	}
	for _, s := range snaps[1:] {
		pair := fmt.Sprintf("%s/%s", ref.inst, s.inst)
		if s.uidValidity != ref.uidValidity {
			prob.add("instances disagree on UIDVALIDITY", "%s %s: %d, %d", folder, pair, ref.uidValidity, s.uidValidity)
		}
		byUID := make(map[imap.UID]fetched)
		for _, m := range s.msgs {
			byUID[m.uid] = m
			r, ok := refByUID[m.uid]
			switch {
			case !ok:
				prob.add("UID→message maps differ between instances", "%s %s: UID %d only in %s (%s)", folder, pair, m.uid, s.inst, m.id)
			case r.id != m.id:
				prob.add("UID→message maps differ between instances", "%s %s: UID %d is %s and %s", folder, pair, m.uid, r.id, m.id)
			case r.flags != m.flags:
				prob.add("UID→flags maps differ between instances", "%s %s: UID %d (%s) %q and %q", folder, pair, m.uid, m.id, r.flags, m.flags)
			}
		}
		for _, r := range ref.msgs {
			if _, ok := byUID[r.uid]; !ok {
				prob.add("UID→message maps differ between instances", "%s %s: UID %d only in %s (%s)", folder, pair, r.uid, ref.inst, r.id)
			}
		}
	}

	// Against what was acknowledged, on every instance.
	for _, s := range snaps {
		where := folder + " on " + s.inst
		n := make(map[string]int)
		for _, m := range s.msgs {
			n[m.id]++
			t := e.live[folder][m.id]
			switch {
			case m.id == "":
				prob.add("message without Message-ID", "%s UID %d", where, m.uid)
			case t != nil:
				if t.uid != 0 && t.uid != m.uid {
					prob.add("message has another UID than the one announced", "%s %s: announced %d, now %d", where, m.id, t.uid, m.uid)
				}
				if want, have := t.flagString(), withoutNoise(m.flags); want != have {
					prob.add("flags differ from the acknowledged changes", "%s %s UID %d: want %q, have %q", where, m.id, m.uid, want, have)
				}
			case e.unsure[m.id]:
			case e.gone[folder][m.id]:
				prob.add("expunged or moved message present", "%s %s UID %d", where, m.id, m.uid)
			default:
				prob.add("unexpected message", "%s %s UID %d", where, m.id, m.uid)
			}
		}
		for id, k := range n {
			if k > 1 && id != "" {
				prob.add("message present more than once", "%s %s: %d times", where, id, k)
			}
		}
		for id := range e.live[folder] {
			if n[id] == 0 {
				prob.add("acknowledged message missing", "%s %s", where, id)
			}
		}
	}
}

// folderDir is a folder's Maildir++ directory under the Maildir root.
func folderDir(root, folder string) string {
	if folder == "INBOX" {
		return root
	}
	return filepath.Join(root, "."+folder)
}

// uidlistLine is one message line of dovecot-uidlist.
type uidlistLine struct {
	uid  uint32
	base string
}

// readUidlist parses a dovecot-uidlist (version 3): a header line, then
// "<uid> [fields] :<filename>" per message.
func readUidlist(path string) (header string, lines []uidlistLine, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for i := 0; sc.Scan(); i++ {
		l := sc.Text()
		if i == 0 {
			header = l
			continue
		}
		if l == "" {
			continue
		}
		sp := strings.IndexByte(l, ' ')
		colon := strings.Index(l, " :")
		if sp < 0 || colon < 0 {
			return header, lines, fmt.Errorf("%s line %d: malformed %q", path, i+1, l)
		}
		uid, err := strconv.ParseUint(l[:sp], 10, 32)
		if err != nil {
			return header, lines, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		lines = append(lines, uidlistLine{uid: uint32(uid), base: baseName(l[colon+2:])})
	}
	return header, lines, sc.Err()
}

// baseName is a Maildir file name without its info part (":2,flags").
func baseName(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// checkDisk reads one folder's files and dovecot-uidlist directly: no
// duplicate uidlist lines, one file per live message, every file listed.
func checkDisk(prob, notes *problems, e *expectation, root, folder string) {
	dir := folderDir(root, folder)
	byBase := checkUidlist(prob, root, folder, "at the end")
	files := make(map[string]int)
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			prob.add("folder unreadable", "%s/%s: %v", folder, sub, err)
			continue
		}
		for _, ent := range ents {
			p := filepath.Join(dir, sub, ent.Name())
			id, err := fileMessageID(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				prob.add("message file unreadable", "%s: %v", p, err)
				continue
			}
			files[id]++
			if _, ok := byBase[baseName(ent.Name())]; !ok {
				notes.add("message file without a dovecot-uidlist line after the last SELECT", "%s/%s/%s (%s)", folder, sub, ent.Name(), id)
			}
		}
	}
	for id, m := range e.live[folder] {
		switch files[id] {
		case 0:
			prob.add("message file lost", "%s %s (UID %d)", folder, id, m.uid)
		case 1:
		default:
			prob.add("message file present more than once", "%s %s: %d files", folder, id, files[id])
		}
	}
}

// checkUidlist parses a folder's dovecot-uidlist, reports duplicate lines
// (Dovecot calls such a file corrupt) and returns the UID of each base name.
func checkUidlist(prob *problems, root, folder, when string) map[string]uint32 {
	_, lines, err := readUidlist(filepath.Join(folderDir(root, folder), "dovecot-uidlist"))
	if err != nil {
		prob.add("dovecot-uidlist unreadable", "%s %s: %v", when, folder, err)
	}
	byUID, byBase := make(map[uint32]string), make(map[string]uint32)
	for _, l := range lines {
		if b, ok := byUID[l.uid]; ok {
			prob.add("dovecot-uidlist: one UID on two lines", "%s %s UID %d: %s and %s", when, folder, l.uid, b, l.base)
		}
		if u, ok := byBase[l.base]; ok {
			prob.add("dovecot-uidlist: one file on two lines", "%s %s %s: UIDs %d and %d", when, folder, l.base, u, l.uid)
		}
		byUID[l.uid], byBase[l.base] = l.base, l.uid
	}
	return byBase
}

// fileMessageID reads the Message-ID of a message file.
func fileMessageID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h, err := textproto.NewReader(bufio.NewReader(io.LimitReader(f, 64*1024))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return "", err
	}
	return strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>"), nil
}

// badWarnings are warnings a server logs when it has broken a promise of
// issue 10: a UID below one already announced, a uidlist read half-written.
var badWarnings = []string{
	"uidlist gave an old UID to a new file",
	"malformed dovecot-uidlist",
	"unreadable dovecot-uidlist",
}

func badWarning(msg string) bool {
	for _, w := range badWarnings {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

// checkLogs turns what the servers logged into problems and notes.
func checkLogs(prob, notes *problems, instances []*instance) {
	for _, in := range instances {
		s, err := summarizeLog(in.logPath)
		if err != nil {
			prob.add("server log unreadable", "%s: %v", in.name, err)
			continue
		}
		if s.panics > 0 {
			prob.add("server died of a panic, instance "+in.name, "%d times", s.panics)
		}
		if s.raw > 0 {
			prob.add("server wrote lines that are not log lines, instance "+in.name, "%d lines, e.g. %q", s.raw, s.rawEx)
		}
		for msg, n := range s.byMsg {
			kind := "server " + in.name + " logged " + msg
			for range n {
				if strings.HasPrefix(msg, "ERROR") || badWarning(msg) {
					prob.add(kind, "see %s", in.logPath)
				} else {
					notes.add(kind, "see %s", in.logPath)
				}
			}
		}
	}
}
