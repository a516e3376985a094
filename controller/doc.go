// Package controller is the locker backend: parcels and their lifecycle,
// compartment allocation through the allocator, one-time pickup codes, door
// commands to cabinets, notifications, and the hash-chained event log that is
// both the audit trail and the durable state. Its core is a synchronous state
// machine per site; the service (lockerd) and the simulator drive the same
// code.
//
// What it is for: being the real controller that every lockertwin user
// exercises, with invariants a checker can verify on every event.
//
// What it must never do: start goroutines, take locks, read the wall clock or
// use global randomness inside the core (a Clock and a randomness source are
// passed in); import sim, visualize or k6; or lose a parcel on bad input.
package controller
