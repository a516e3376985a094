package scenarios

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a span of time written Go-style with days and weeks added:
// "90s", "36h", "28d", "2w", "1d12h". The word "none" means never and is
// accepted only where a key says so (pickup windows, reminders).
type Duration time.Duration

// Never is the value of a duration written "none".
const Never Duration = -1

// MaxDuration is the longest span a scenario may write, 36500d (a hundred
// years): longer than any window, horizon or time between failures means,
// and well inside the 292 years that virtual time, counted in nanoseconds,
// can hold, so that adding two spans cannot overflow.
const MaxDuration = Duration(36500 * day)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// ParseDuration parses a scenario duration.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "none" {
		return Never, nil
	}
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	var total time.Duration
	rest := s
	for rest != "" {
		// Split off a leading number and its unit.
		i := 0
		for i < len(rest) && (rest[i] == '.' || (rest[i] >= '0' && rest[i] <= '9')) {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("duration %q: expected a number at %q", s, rest)
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != '.' {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		scale, known := units[unit]
		switch {
		case unit == "":
			return 0, fmt.Errorf("duration %q: missing unit (use s, m, h, d or w)", s)
		case !known:
			return 0, fmt.Errorf("duration %q: unknown unit %q (use s, m, h, d or w)", s, unit)
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: malformed number %q", s, num)
		}
		// Each part is at most MaxDuration and so is the sum before it, so
		// the sum cannot overflow before it is checked.
		if f*float64(scale) > float64(MaxDuration) {
			return 0, tooLong(s)
		}
		if unit == "d" || unit == "w" {
			total += time.Duration(f * float64(scale))
		} else {
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			total += d
		}
		if total > time.Duration(MaxDuration) {
			return 0, tooLong(s)
		}
	}
	return Duration(total), nil
}

// units are the units a duration may use, with their spans.
var units = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "ms": time.Millisecond,
	"s": time.Second, "m": time.Minute, "h": time.Hour, "d": day, "w": week,
}

func tooLong(s string) error {
	return fmt.Errorf("duration %q is longer than %v (a hundred years)", s, MaxDuration)
}

// D returns the span as a time.Duration. Never has no span; callers test
// for it first.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Hours returns the span in hours.
func (d Duration) Hours() float64 { return time.Duration(d).Hours() }

func (d Duration) String() string {
	if d == Never {
		return "none"
	}
	return formatSpan(time.Duration(d))
}

// formatSpan writes a span the way scenarios do: "3d", "8h30m", "90ms".
func formatSpan(td time.Duration) string {
	if td == 0 {
		return "0s"
	}
	if td < time.Second || td%time.Millisecond != 0 {
		return td.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		span time.Duration
		unit string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if n := td / u.span; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.unit)
			td -= n * u.span
		}
	}
	return b.String()
}

func (d *Duration) decodeNode(dec *decoder, n *yaml.Node, path string) {
	s, ok := dec.scalar(n, path)
	if !ok {
		return
	}
	v, err := ParseDuration(s)
	if err != nil {
		dec.errorf(n, path, "%s: %v", path, err)
		return
	}
	*d = v
}

// TimeOfDay is a wall-clock time within a day, written "HH:MM".
type TimeOfDay time.Duration

// ParseTimeOfDay parses "HH:MM" (00:00 to 23:59).
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, fmt.Errorf("time of day %q: expected HH:MM", s)
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("time of day %q: expected HH:MM between 00:00 and 23:59", s)
	}
	return TimeOfDay(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute), nil
}

// D returns the offset from midnight.
func (t TimeOfDay) D() time.Duration { return time.Duration(t) }

func (t TimeOfDay) String() string {
	d := time.Duration(t)
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func (t *TimeOfDay) decodeNode(dec *decoder, n *yaml.Node, path string) {
	s, ok := dec.scalar(n, path)
	if !ok {
		return
	}
	v, err := ParseTimeOfDay(s)
	if err != nil {
		dec.errorf(n, path, "%s: %v", path, err)
		return
	}
	*t = v
}
