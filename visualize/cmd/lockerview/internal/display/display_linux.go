//go:build linux && !android

package display

import "syscall"

// Problem says what is wrong with the display lockerview would open, or ""
// when it looks usable: DISPLAY set and, for a display on this machine
// (":N", "unix:N"), its X server's socket accepting a connection. A display
// on another host is left to Ebiten to reach.
func Problem(display string) string {
	if display == "" {
		return "no X display (DISPLAY is not set)"
	}
	host, num, ok := split(display)
	if !ok {
		return "DISPLAY " + quote(display) + " is not of the form [host]:N[.screen]"
	}
	if host != "" && host != "unix" {
		return ""
	}
	path := "/tmp/.X11-unix/X" + num
	for _, name := range []string{"@" + path, path} { // abstract socket first, as Xlib tries
		if dial(name) {
			return ""
		}
	}
	return "no X server answers on display " + quote(display)
}

// split takes "[host]:N[.screen]" apart into host and N.
func split(display string) (host, num string, ok bool) {
	colon := -1
	for i := len(display) - 1; i >= 0; i-- {
		if display[i] == ':' {
			colon = i
			break
		}
	}
	if colon < 0 {
		return "", "", false
	}
	host, num = display[:colon], display[colon+1:]
	for i := 0; i < len(num); i++ {
		if num[i] == '.' {
			num = num[:i]
			break
		}
	}
	if num == "" {
		return "", "", false
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return "", "", false
		}
	}
	return host, num, true
}

func dial(name string) bool {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return true // cannot tell: let Ebiten try
	}
	defer syscall.Close(fd)
	return syscall.Connect(fd, &syscall.SockaddrUnix{Name: name}) == nil
}

func quote(s string) string { return `"` + s + `"` }
