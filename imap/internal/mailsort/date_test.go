package mailsort

import (
	"testing"
	"time"
)

func TestSentDate(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	tests := []struct {
		raw  string
		want time.Time // zero: no sent date
	}{
		// RFC 5256 §2.2's own example.
		{"31 Dec 2000 16:01:33 -0800", utc(2001, 1, 1, 0, 1, 33)},
		{"Fri, 21 Nov 1997 09:55:06 -0600", utc(1997, 11, 21, 15, 55, 6)},
		{"Thu, 13 Feb 1969 23:32:54 -0330", utc(1969, 2, 14, 3, 2, 54)},
		{"Thu,13 Feb 1969 23:32 -0330 (Newfoundland Time)", utc(1969, 2, 14, 3, 2, 0)},
		// RFC 5322 appendix A.6.3: CFWS inside the time.
		{"Fri, 21 Nov 1997 09(comment):   55  :  06 -0600", utc(1997, 11, 21, 15, 55, 6)},
		// §4.3 obsolete years and zones.
		{"21 Nov 97 09:55:06 GMT", utc(1997, 11, 21, 9, 55, 6)},
		{"1 Jan 49 00:00:00 +0000", utc(2049, 1, 1, 0, 0, 0)},
		{"1 Jan 50 00:00:00 +0000", utc(1950, 1, 1, 0, 0, 0)},
		{"1 Jan 103 00:00:00 +0000", utc(2003, 1, 1, 0, 0, 0)},
		{"Fri, 21 Nov 1997 09:55:06 EST", utc(1997, 11, 21, 14, 55, 6)},
		{"Fri, 21 Nov 1997 09:55:06 pdt", utc(1997, 11, 21, 16, 55, 6)},
		{"Fri, 21 Nov 1997 09:55:06 Z", utc(1997, 11, 21, 9, 55, 6)},
		{"Fri, 21 Nov 1997 09:55:06 +05:30", utc(1997, 11, 21, 4, 25, 6)},
		// §2.2: an invalid zone is UTC, an invalid or missing time midnight.
		{"Fri, 21 Nov 1997 09:55:06 XYZ", utc(1997, 11, 21, 9, 55, 6)},
		{"Fri, 21 Nov 1997 09:55:06 +0099", utc(1997, 11, 21, 9, 55, 6)},
		{"Fri, 21 Nov 1997 09:55:06 +01", utc(1997, 11, 21, 8, 55, 6)},
		{"Fri, 21 Nov 1997 25:00:00 +0000", utc(1997, 11, 21, 0, 0, 0)},
		{"Fri, 21 Nov 1997 9:7 -0100", utc(1997, 11, 21, 10, 7, 0)},
		{"Fri, 21 Nov 1997", utc(1997, 11, 21, 0, 0, 0)},
		{"21 November 1997 09:55:06 +0000", utc(1997, 11, 21, 9, 55, 6)},
		{"Fri 21 Sept 1997 09:55:06 +0000", utc(1997, 9, 21, 9, 55, 6)},
		{"Sat, 31 Dec 2016 23:59:60 +0000", utc(2017, 1, 1, 0, 0, 0)},
		// Forms outside RFC 5322 seen in real mail.
		{"Mon Jan  2 15:04:05 2006", utc(2006, 1, 2, 15, 4, 5)},
		{"Mon Jan  2 15:04:05 MST 2006", utc(2006, 1, 2, 22, 4, 5)},
		{"2006-01-02T15:04:05Z", utc(2006, 1, 2, 15, 4, 5)},
		{"2006-01-02 15:04:05 +0100", utc(2006, 1, 2, 14, 4, 5)},
		{"2006-01-02", utc(2006, 1, 2, 0, 0, 0)},
		{"2006-01-02T15:04:05-05:00", utc(2006, 1, 2, 20, 4, 5)},
		// No date: the caller falls back to INTERNALDATE.
		{"", time.Time{}},
		{"garbage", time.Time{}},
		{"31 Feb 2001 10:00:00 +0000", time.Time{}},
		{"0 Jan 2001", time.Time{}},
		{"1 Foo 2001 10:00:00 +0000", time.Time{}},
		{"Fri, 21 Nov", time.Time{}},
		{"1 Jan 99999 00:00:00", time.Time{}},
		{"01/02/2006 10:00", time.Time{}},
		{"2006-13-01", time.Time{}},
		{"99999999999999999999 Jan 2001", time.Time{}},
	}
	for _, tt := range tests {
		got, ok := SentDate(tt.raw)
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
			t.Errorf("SentDate(%q) = %v, %v; want %v", tt.raw, got, ok, tt.want)
		}
		if ok && got.Location() != time.UTC {
			t.Errorf("SentDate(%q) not in UTC", tt.raw)
		}
	}
}
