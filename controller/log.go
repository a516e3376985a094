package controller

// Log is where the core appends its domain events. Append receives an event
// whose Seq, Prev and Hash are already set (the core keeps the chain) and
// must keep a copy of it (the pointer is valid only during the call), or fail; a failed append stops the core from acting on the
// event (the service's store turns this into a 503, never a lost parcel).
type Log interface {
	Append(e *Event) error
}

// MemoryLog keeps every event in memory: for tests, tools and Rebuild.
type MemoryLog struct {
	events []Event
}

// Append keeps a copy of e.
func (l *MemoryLog) Append(e *Event) error {
	l.events = append(l.events, *e)
	return nil
}

// Events returns the log's events (not a copy: do not modify).
func (l *MemoryLog) Events() []Event { return l.events }

// Len is the number of events.
func (l *MemoryLog) Len() int { return len(l.events) }

// ParcelHistory returns the events of one parcel, in order.
func (l *MemoryLog) ParcelHistory(parcel string) []Event {
	var out []Event
	for _, e := range l.events {
		if e.Parcel == parcel {
			out = append(out, e)
		}
	}
	return out
}

// HeadLog keeps only the count and the last hash: a simulation of millions
// of parcels keeps memory bounded by its live state, and observers that want
// the events (KPIs, a recorder) attach as hooks.
type HeadLog struct {
	Count uint64
	Head  [32]byte
}

// Append records e's position in the chain.
func (l *HeadLog) Append(e *Event) error {
	l.Count++
	l.Head = e.Hash
	return nil
}
