package mailsort

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// msg builds the keys of a message from raw header lines ("Name: value"),
// through FromHeader as the engine will; arrival is its INTERNALDATE.
func msg(arrival int64, lines ...string) Keys {
	h := map[string]string{}
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			panic("bad header line " + l)
		}
		name = strings.ToLower(name)
		if _, dup := h[name]; !dup {
			h[name] = strings.TrimLeft(value, " ")
		}
	}
	k := FromHeader(func(name string) string { return h[strings.ToLower(name)] })
	k.Arrival = arrival
	return k
}

// render writes threads with message i numbered nums[i].
func render(threads []*Thread, nums []uint32) string {
	return string(AppendThreads(nil, threads, func(i int) uint32 { return nums[i] }))
}

func seqNums(n int) []uint32 {
	nums := make([]uint32, n)
	for i := range nums {
		nums[i] = uint32(i + 1)
	}
	return nums
}

// checkThreads fails unless every message index in [0, n) appears exactly
// once in threads and no dummy is left without a message below it.
func checkThreads(t testing.TB, threads []*Thread, n int) {
	t.Helper()
	seen := make([]int, n)
	var walk func(th *Thread, depth int)
	walk = func(th *Thread, depth int) {
		if th.Msg >= 0 {
			if th.Msg >= n {
				t.Fatalf("message index %d out of range %d", th.Msg, n)
			}
			seen[th.Msg]++
		} else if !hasMsg(th) {
			t.Fatalf("dummy without messages at depth %d", depth)
		}
		for _, c := range th.Children {
			walk(c, depth+1)
		}
	}
	for _, th := range threads {
		walk(th, 0)
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("message %d appears %d times", i, c)
		}
	}
}

// parseThreadData reads THREAD response data back into the numbers it
// lists, checking the RFC 5256 §5 grammar on the way (thread-list,
// thread-members, thread-nested of at least two lists).
func parseThreadData(s string) ([]uint32, error) {
	var nums []uint32
	p := 0
	var list func() error
	// members: nz-number *(SP nz-number) [SP thread-nested] / thread-nested
	list = func() error {
		if p >= len(s) || s[p] != '(' {
			return fmt.Errorf("want ( at %d in %q", p, s)
		}
		p++
		sawNum := false
		for p < len(s) && s[p] >= '1' && s[p] <= '9' {
			q := p
			for p < len(s) && s[p] >= '0' && s[p] <= '9' {
				p++
			}
			n, _ := strconv.ParseUint(s[q:p], 10, 32)
			nums = append(nums, uint32(n))
			sawNum = true
			if p < len(s) && s[p] == ' ' {
				p++
				if p < len(s) && s[p] == '(' {
					break
				}
				continue
			}
		}
		nested := 0
		for p < len(s) && s[p] == '(' {
			if err := list(); err != nil {
				return err
			}
			nested++
		}
		if !sawNum && nested < 2 {
			return fmt.Errorf("thread-nested with %d lists at %d in %q", nested, p, s)
		}
		if sawNum && nested == 1 {
			return fmt.Errorf("single nested list after members at %d in %q", p, s)
		}
		if p >= len(s) || s[p] != ')' {
			return fmt.Errorf("want ) at %d in %q", p, s)
		}
		p++
		return nil
	}
	for p < len(s) {
		if err := list(); err != nil {
			return nil, err
		}
	}
	return nums, nil
}
