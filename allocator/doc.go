// Package allocator decides which compartment a parcel gets: compartment
// geometry and temperature zones, the inventory of a site's compartments and
// their states, and allocation policies registered by name.
//
// What it is for: fast, never-impossible assignments that allocator engineers
// can change and regression-test on fixed seeds. Every policy passes the
// conformance suite in allocatortest.
//
// What it must never do: import any other lockertwin package, allocate memory
// or scan the whole bank on the allocation hot path, or hand out a compartment
// that is occupied, reserved, out of service, too small or in the wrong zone.
package allocator
