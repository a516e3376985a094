// Package k6 is lockertwin's load harness: lockerload puts thousands of
// virtual cabinets and couriers on a running controller and writes
// k6-compatible results; the k6 scripts beside it drive the HTTP API.
//
// What it is for: latency percentiles and throughput of a live controller
// under realistic load, in formats the k6 ecosystem reads.
//
// What it must never do: link go.k6.io/k6 (AGPL): our k6 support is scripts
// plus k6-compatible output written by our own code. It sends traffic only to
// the addresses it is given, bounded in count and time.
package k6
