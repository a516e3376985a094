// Package display tells whether the X display lockerview would open is
// there. Ebiten opens GLFW while its packages initialise, before main runs,
// and without a display it panics with a goroutine dump that buries the one
// line that matters; package guard asks this one first.
//
// It imports nothing but syscall, so that guard, which imports only it and
// syscall, initialises before os and so before Ebiten (see guard).
package display
