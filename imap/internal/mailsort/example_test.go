package mailsort_test

import (
	"fmt"
	"strings"

	"github.com/letterbox-mail/letterbox/imap/internal/mailsort"
)

// How the IMAP engine uses the package: keys from each message's header
// (cached by the store), then SORT or THREAD over the messages a search
// matched, in mailbox order.
func Example() {
	headers := []map[string]string{
		{"Message-ID": "<1@example.org>", "Subject": "Plans", "From": "Ann <ann@example.org>", "Date": "Mon, 2 Mar 2020 10:00:00 +0000"},
		{"Message-ID": "<2@example.org>", "Subject": "Re: Plans", "From": "bob@example.org", "In-Reply-To": "<1@example.org>", "Date": "Mon, 2 Mar 2020 11:00:00 +0000"},
		{"Message-ID": "<3@example.org>", "Subject": "=?utf-8?q?Caf=C3=A9?=", "From": "Cy <cy@example.org>"}, // no Date
		{"Message-ID": "<4@example.org>", "Subject": "[list] Re: plans", "From": "ann@example.org", "References": "<1@example.org> <2@example.org>", "Date": "Mon, 2 Mar 2020 12:00:00 +0000"},
	}
	seqs := []uint32{3, 5, 8, 9} // the messages the search matched
	var keys []mailsort.Keys
	for i, h := range headers {
		k := mailsort.FromHeader(func(name string) string { return h[name] })
		k.Arrival = 1583150000 + int64(i) // INTERNALDATE, from the store
		k.Size = 1000
		keys = append(keys, k)
	}

	var sorted []string
	for _, i := range mailsort.Sort(keys, []mailsort.Criterion{{Key: mailsort.SortSubject}, {Key: mailsort.SortDate, Reverse: true}}) {
		sorted = append(sorted, fmt.Sprint(seqs[i]))
	}
	fmt.Println("* SORT " + strings.Join(sorted, " "))

	threads := mailsort.ThreadReferences(keys)
	fmt.Printf("* THREAD %s\n", mailsort.AppendThreads(nil, threads, func(i int) uint32 { return seqs[i] }))
	// Output:
	// * SORT 8 9 5 3
	// * THREAD (3 5 9)(8)
}
