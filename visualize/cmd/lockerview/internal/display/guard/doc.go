// Package guard stops lockerview with a plain message, before Ebiten starts,
// on a Linux desktop whose X display is missing or does not answer. The
// command imports it for that effect alone.
//
// The check runs in this package's init. The package imports nothing but
// syscall and display (which imports only syscall), so by Go's rule for the
// order of package initialisation (the first package, by import path, whose
// imports are all initialised goes next) it runs as soon as syscall is
// ready: before os, and so before Ebiten, which needs os. lockerview's test
// runs the built command without a display and checks that no panic shows.
package guard
