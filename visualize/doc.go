// Package visualize is lockertwin's live view: a scene model built from a
// stream of observations (simulated or from a running lockerd), drawn by an
// Ebiten adapter on the desktop, headless for screenshots, and in the browser
// as WebAssembly.
//
// What it is for: making a running locker network legible at a glance.
//
// What it must never do: reach into the simulator's or the controller's
// state (it only reads observations), or let Ebiten leak into any other
// package: it is the only package that imports Ebiten.
package visualize
