package imap

import (
	"slices"
	"sort"
	"strings"

	"github.com/letterbox-mail/letterbox/imap/internal/mailsort"
)

// CONTEXT=SORT (RFC 5267 §4): UID SORT RETURN (UPDATE) keeps a sorted
// result up to date. The session keeps the UIDs in the order the client
// has them; as messages come to match or stop matching (context.go finds
// which), ADDTO and REMOVEFROM carry pairs of a position (1-based) and the
// UIDs in sort order that go in or out there (§4.3.3, §4.3.4), processed
// in the order written. Expunged messages are removed with a REMOVEFROM
// too, after the EXPUNGE: the context holds UIDs, which stay valid.
// Only the order is kept in memory; keys are read from the cache when a
// message has to find its place (a binary search).

// liveSort is the sorted side of a search kept alive by UID SORT.
type liveSort struct {
	criteria []mailsort.Criterion
	needs    keyNeeds
	order    []uint32
}

// startSortUpdate keeps a SORT alive, as startUpdate keeps a SEARCH.
func (s *session) startSortUpdate(cmd *command, a *sortArgs, sorted []target) error {
	if err := s.startUpdate(cmd, &a.searchArgs, sorted); err != nil {
		return err
	}
	ls := s.sel.live[len(s.sel.live)-1]
	ls.sort = &liveSort{criteria: a.criteria, needs: needsOf(a.criteria), order: uidsOf(sorted)}
	return nil
}

// sortChanged tells the client of a sorted context that uids stopped
// (remove) or started (add) matching.
func (s *session) sortChanged(ls *liveSearch, add, remove []uint32) {
	s.removeFromSorted(ls, remove)
	if len(add) == 0 {
		return
	}
	st := ls.sort
	keys := make(map[uint32]*mailsort.Keys)
	keyOf := func(uid uint32) *mailsort.Keys {
		if k, ok := keys[uid]; ok {
			return k
		}
		k := &mailsort.Keys{}
		if ks, err := s.sortKeys([]target{{uid: uid}}, st.needs); err == nil {
			*k = ks[0]
		}
		keys[uid] = k
		return k
	}
	// RFC 5256: equal messages stay in mailbox order, which is UID order.
	less := func(a, b uint32) bool {
		if r := mailsort.CompareKeys(keyOf(a), keyOf(b), st.criteria); r != 0 {
			return r < 0
		}
		return a < b
	}
	slices.SortFunc(add, func(a, b uint32) int {
		if less(a, b) {
			return -1
		}
		return 1
	})
	added := make(map[uint32]bool, len(add))
	for _, u := range add {
		i := sort.Search(len(st.order), func(i int) bool { return less(u, st.order[i]) })
		st.order = slices.Insert(st.order, i, u)
		added[u] = true
	}
	// Runs of new UIDs, first to last: each position counts the runs
	// inserted before it, as the client applies them in turn.
	var pairs []string
	for i := 0; i < len(st.order); {
		if !added[st.order[i]] {
			i++
			continue
		}
		j := i
		for j < len(st.order) && added[st.order[j]] {
			j++
		}
		pairs = append(pairs, itoa(i+1)+" "+numSetString(st.order[i:j]))
		i = j
	}
	s.writeContextUpdate(ls, "ADDTO", pairs)
}

// removeFromSorted sends REMOVEFROM for the UIDs of the context among
// uids, last runs first, so that no position moves before it is used.
func (s *session) removeFromSorted(ls *liveSearch, uids []uint32) {
	if len(uids) == 0 {
		return
	}
	gone := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		gone[u] = true
	}
	st := ls.sort
	var pairs []string
	for i := len(st.order) - 1; i >= 0; {
		if !gone[st.order[i]] {
			i--
			continue
		}
		j := i
		for j > 0 && gone[st.order[j-1]] {
			j--
		}
		pairs = append(pairs, itoa(j+1)+" "+numSetString(st.order[j:i+1]))
		st.order = slices.Delete(st.order, j, i+1)
		i = j - 1
	}
	s.writeContextUpdate(ls, "REMOVEFROM", pairs)
}

func (s *session) writeContextUpdate(ls *liveSearch, item string, pairs []string) {
	if len(pairs) == 0 {
		return
	}
	o := &s.c.out
	o.writeString("* ESEARCH (TAG ")
	o.str(ls.tag)
	o.writeString(") UID " + item + " (" + strings.Join(pairs, " ") + ")\r\n")
}
