package mailsort

// mergeSubjects is RFC 5256 §3 step 5: roots whose threads have the same
// base subject (compared by Compare) are gathered into one thread. It
// returns the new root set; its order does not matter, step 6 sorts it.
func mergeSubjects(keys []Keys, roots []*Thread) []*Thread {
	folded := foldAll(keys, func(k *Keys) string { return k.Subject })
	subject := func(t *Thread) string {
		// 5.B.i: a dummy's thread subject is its first child's.
		m := t
		if m.Msg < 0 && len(m.Children) > 0 {
			m = m.Children[0]
		}
		if m.Msg < 0 {
			return ""
		}
		return folded[m.Msg]
	}
	reply := func(t *Thread) bool { return t.Msg >= 0 && keys[t.Msg].ReplyOrFwd }

	// 5.A and 5.B: one message per subject, a dummy in preference to a
	// message and a message that is not a reply in preference to one that
	// is.
	table := make(map[string]*Thread)
	subjects := make([]string, len(roots))
	for i, t := range roots {
		s := subject(t)
		subjects[i] = s
		if s == "" {
			continue
		}
		old, ok := table[s]
		if !ok || (old.Msg >= 0 && (t.Msg < 0 || (reply(old) && !reply(t)))) {
			table[s] = t
		}
	}

	// 5.C: merge every other root into the one in the table. A merged
	// root, or one moved under a new dummy, leaves the root set (and is
	// skipped if the loop has yet to reach it); new dummies join it.
	gone := make(map[*Thread]bool)
	var added []*Thread
	for i, t := range roots {
		s := subjects[i]
		if s == "" || gone[t] || table[s] == t {
			continue
		}
		old := table[s]
		gone[t] = true
		switch {
		case old.Msg < 0 && t.Msg < 0:
			old.Children = append(old.Children, t.Children...)
		case old.Msg < 0:
			old.Children = append(old.Children, t)
		case reply(t) && !reply(old):
			old.Children = append(old.Children, t)
		default:
			// Neither is a dummy: 5.B put a dummy of this subject in
			// the table if there was one.
			d := &Thread{Msg: none, Children: []*Thread{old, t}}
			table[s] = d
			gone[old] = true
			added = append(added, d)
		}
	}
	out := make([]*Thread, 0, len(roots)-len(gone)+len(added))
	for _, t := range roots {
		if !gone[t] {
			out = append(out, t)
		}
	}
	return append(out, added...)
}
