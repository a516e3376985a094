// Package strarena makes many short strings with few allocations.
//
// A simulated city month names some 30 million events, commands, codes and
// parcels; a string each was a fifth of all the allocations of a run. An
// Arena appends the bytes of each new string to a chunk and returns a
// string that shares the chunk, so a chunk's worth of strings costs one
// allocation. A chunk stays alive while any of its strings does: strings
// made together should die at about the same time (the ids of one
// cabinet's events, one site's commands), which keeps the waste small.
package strarena

import "unsafe"

// ChunkSize is the size of the chunks an Arena allocates. Small enough that
// one long-lived string keeps little else alive.
const ChunkSize = 1024

// Arena hands out strings that share chunks. The zero value is ready. An
// Arena is not safe for concurrent use.
type Arena struct {
	chunk []byte
}

// String returns a string with b's bytes.
func (a *Arena) String(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	if n > ChunkSize/4 {
		return string(b) // a long one gets its own
	}
	if cap(a.chunk)-len(a.chunk) < n {
		a.chunk = make([]byte, 0, ChunkSize)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	// The bytes from start on are never written again: append only adds
	// after them, and a full chunk is dropped, not reused.
	return unsafe.String(&a.chunk[start], n)
}
