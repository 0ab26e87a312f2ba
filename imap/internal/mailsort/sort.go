package mailsort

import (
	"cmp"
	"slices"
	"strings"
)

// SortKey is a sort criterion of RFC 5256 §3 or RFC 5957 §4.
type SortKey uint8

// The sort keys, in the order of RFC 5256 §3 and then RFC 5957 §4.
const (
	SortArrival     SortKey = iota + 1 // INTERNALDATE
	SortCc                             // addr-mailbox of the first Cc address
	SortDate                           // sent date (§2.2)
	SortFrom                           // addr-mailbox of the first From address
	SortSize                           // RFC822.SIZE
	SortSubject                        // base subject (§2.1)
	SortTo                             // addr-mailbox of the first To address
	SortDisplayFrom                    // RFC 5957 display value of From
	SortDisplayTo                      // RFC 5957 display value of To
)

var sortKeyNames = [...]string{
	SortArrival: "ARRIVAL", SortCc: "CC", SortDate: "DATE", SortFrom: "FROM",
	SortSize: "SIZE", SortSubject: "SUBJECT", SortTo: "TO",
	SortDisplayFrom: "DISPLAYFROM", SortDisplayTo: "DISPLAYTO",
}

// String returns the criterion's IMAP name.
func (k SortKey) String() string {
	if int(k) < len(sortKeyNames) && sortKeyNames[k] != "" {
		return sortKeyNames[k]
	}
	return "UNKNOWN"
}

// ParseSortKey looks up a criterion by its IMAP name, case-insensitively.
func ParseSortKey(name string) (SortKey, bool) {
	for k, n := range sortKeyNames {
		if n != "" && strings.EqualFold(n, name) {
			return SortKey(k), true
		}
	}
	return 0, false
}

// Criterion is one sort-criterion: a key, reversed if Reverse.
type Criterion struct {
	Key     SortKey
	Reverse bool
}

// Sort returns the order of RFC 5256 §3 SORT for keys, which must be in
// mailbox order: a permutation of their indices. Criteria apply in turn;
// REVERSE reverses only its own criterion, and messages equal under all of
// them stay in mailbox order (the implicit final "sequence number"
// criterion, which REVERSE never affects). Strings compare by Compare,
// the empty string first. An unknown key compares every message equal.
func Sort(keys []Keys, criteria []Criterion) []int {
	// Each criterion becomes a column of ready-to-compare values, so that
	// the O(n log n) comparisons do no folding or branching on the key.
	cols := make([]column, 0, len(criteria))
	for _, c := range criteria {
		if col, ok := makeColumn(keys, c); ok {
			cols = append(cols, col)
		}
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		for i := range cols {
			c := &cols[i]
			var r int
			if c.strs != nil {
				r = strings.Compare(c.strs[a], c.strs[b])
			} else {
				r = cmp.Compare(c.ints[a], c.ints[b])
			}
			if r != 0 {
				if c.reverse {
					return -r
				}
				return r
			}
		}
		return a - b
	})
	return order
}

type column struct {
	strs    []string
	ints    []int64
	reverse bool
}

func makeColumn(keys []Keys, c Criterion) (column, bool) {
	col := column{reverse: c.Reverse}
	var str func(*Keys) string
	switch c.Key {
	case SortArrival, SortDate, SortSize:
		col.ints = make([]int64, len(keys))
		for i := range keys {
			k := &keys[i]
			switch c.Key {
			case SortArrival:
				col.ints[i] = k.Arrival
			case SortDate:
				col.ints[i] = k.SentDate()
			default:
				col.ints[i] = k.Size
			}
		}
		return col, true
	case SortCc:
		str = func(k *Keys) string { return k.Cc }
	case SortFrom:
		str = func(k *Keys) string { return k.From }
	case SortSubject:
		str = func(k *Keys) string { return k.Subject }
	case SortTo:
		str = func(k *Keys) string { return k.To }
	case SortDisplayFrom:
		str = func(k *Keys) string { return k.DisplayFrom }
	case SortDisplayTo:
		str = func(k *Keys) string { return k.DisplayTo }
	default:
		return col, false
	}
	col.strs = foldAll(keys, str)
	return col, true
}

// CompareKeys compares two messages under criteria the way Sort orders
// them, without the final sequence-number tie-break: 0 means equal under
// every criterion (the caller then orders by mailbox order). It serves
// where a sorted result is kept up to date one message at a time (RFC
// 5267 CONTEXT=SORT).
func CompareKeys(a, b *Keys, criteria []Criterion) int {
	for _, c := range criteria {
		var r int
		switch c.Key {
		case SortArrival:
			r = cmp.Compare(a.Arrival, b.Arrival)
		case SortDate:
			r = cmp.Compare(a.SentDate(), b.SentDate())
		case SortSize:
			r = cmp.Compare(a.Size, b.Size)
		case SortCc:
			r = Compare(a.Cc, b.Cc)
		case SortFrom:
			r = Compare(a.From, b.From)
		case SortSubject:
			r = Compare(a.Subject, b.Subject)
		case SortTo:
			r = Compare(a.To, b.To)
		case SortDisplayFrom:
			r = Compare(a.DisplayFrom, b.DisplayFrom)
		case SortDisplayTo:
			r = Compare(a.DisplayTo, b.DisplayTo)
		}
		if r != 0 {
			if c.Reverse {
				return -r
			}
			return r
		}
	}
	return 0
}
