// Package sim is lockertwin's discrete-event simulator: a deterministic engine
// over integer virtual time, named random streams derived from one seed, and
// (as it grows) the simulated world — demand, couriers, recipients, faults —
// that drives the real controller, plus the KPIs and report of a run.
//
// What it is for: running a scenario many times faster than real time, with
// the production controller and allocator in the loop, and getting the same
// answer every time for the same scenario and seed.
//
// What it must never do: read the wall clock, use global or unseeded
// randomness, start goroutines inside a simulated run, or let Go's map
// iteration order reach an output. Replications may run in parallel, each on
// its own Engine. It imports controller, twin, allocator and scenarios, and
// is imported only by visualize and k6.
package sim
