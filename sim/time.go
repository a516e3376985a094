package sim

import (
	"strconv"
	"time"
)

// Time is a point in virtual time: nanoseconds since the start of a run.
// It is an integer so that event ordering is exact and runs are reproducible
// bit for bit; floating-point clocks drift with the order of additions.
type Time int64

// Common spans of virtual time.
const (
	Nanosecond  Time = 1
	Microsecond      = 1000 * Nanosecond
	Millisecond      = 1000 * Microsecond
	Second           = 1000 * Millisecond
	Minute           = 60 * Second
	Hour             = 60 * Minute
	Day              = 24 * Hour
	Week             = 7 * Day
)

// Forever is later than any event a run schedules.
const Forever Time = 1<<63 - 1

// FromDuration converts a wall-clock span to virtual time.
func FromDuration(d time.Duration) Time { return Time(d) }

// FromSeconds converts a span in (fractional) seconds to virtual time,
// rounding to the nearest nanosecond and saturating at Forever.
func FromSeconds(s float64) Time {
	ns := s * 1e9
	if ns >= float64(Forever) {
		return Forever
	}
	if ns <= -float64(Forever) {
		return -Forever
	}
	if ns < 0 {
		return Time(ns - 0.5)
	}
	return Time(ns + 0.5)
}

// Duration converts virtual time back to a time.Duration.
func (t Time) Duration() time.Duration { return time.Duration(t) }

// Seconds returns t in seconds.
func (t Time) Seconds() float64 { return float64(t) / 1e9 }

// Hours returns t in hours.
func (t Time) Hours() float64 { return float64(t) / float64(Hour) }

// String prints t as a day count plus a clock, e.g. "3d04:05:06.789", which is
// how planners read simulated time in logs and failure reports.
func (t Time) String() string {
	if t == Forever {
		return "forever"
	}
	sign := ""
	if t < 0 {
		sign = "-"
		t = -t
	}
	days := t / Day
	rem := t % Day
	h := rem / Hour
	m := rem % Hour / Minute
	s := rem % Minute / Second
	ms := rem % Second / Millisecond
	b := make([]byte, 0, 24)
	b = append(b, sign...)
	b = strconv.AppendInt(b, int64(days), 10)
	b = append(b, 'd')
	b = appendPadded(b, int64(h), 2)
	b = append(b, ':')
	b = appendPadded(b, int64(m), 2)
	b = append(b, ':')
	b = appendPadded(b, int64(s), 2)
	b = append(b, '.')
	b = appendPadded(b, int64(ms), 3)
	return string(b)
}

func appendPadded(b []byte, v int64, width int) []byte {
	s := strconv.FormatInt(v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
