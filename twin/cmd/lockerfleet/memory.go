package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/lockertwin/lockertwin/internal/atomicfile"
	"github.com/lockertwin/lockertwin/twin"
)

// fleetMemory is the virtual cabinets' non-volatile memory, kept in one
// file between runs of lockerfleet: a cabinet restarted without it would
// count its events from 1 again, and the controller, which has seen those
// sequence numbers, would drop them all (PROTOCOL.md: keep seq across
// restarts).
//
// The file is saved every few seconds while the fleet runs and once more
// after its cabinets have stopped; only that last save is marked clean. A
// fleet that was killed has sent events after its last save, so its
// cabinets resume crashSkip numbers on: the controller sees a gap, raises a
// sequence_gap alarm, asks for their state and carries on, as it would for
// real cabinets that lost power.
type fleetMemory struct {
	Clean    bool                   `json:"clean"`
	Cabinets map[string]twin.Memory `json:"cabinets"` // by "site/cabinet"
	// Logins tells, by "site/cabinet", which provisioning of the cabinet a
	// memory belongs to: a digest of the secret lockerd gave it. A cabinet
	// provisioned anew (another lockerd data directory) gets a new secret
	// and starts afresh, not from a sequence and contents that lockerd has
	// never seen. A memory without one (an older file) is taken as it is.
	Logins map[string]string `json:"logins,omitempty"`
	// skipped: loaded from an unclean save, every cabinet's sequence has
	// moved on by crashSkip (those this run does not start too, so that a
	// later save keeps the skip).
	skipped bool
}

// crashSkip is how far a cabinet's sequence moves on after an unclean
// stop: more events than a cabinet sends between two saves.
const crashSkip = 1000

func memoryKey(site, cabinet string) string { return site + "/" + cabinet }

// loginOf is what Logins keeps of a cabinet's secret: a digest, not the
// secret.
func loginOf(secret string) string {
	sum := sha256.Sum256([]byte("lockerfleet memory\x00" + secret))
	return hex.EncodeToString(sum[:8])
}

// loadMemory reads the fleet's memory file; none yet is an empty memory.
func loadMemory(path string) (*fleetMemory, error) {
	m := &fleetMemory{Clean: true, Cabinets: map[string]twin.Memory{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("%s: %w (delete it, or run with -memory none, to start the cabinets afresh)", path, err)
	}
	if m.Cabinets == nil {
		m.Cabinets = map[string]twin.Memory{}
	}
	if !m.Clean {
		for k, mem := range m.Cabinets {
			mem.Seq += crashSkip
			m.Cabinets[k] = mem
		}
		m.Clean, m.skipped = true, true
	}
	return m, nil
}

// resume is what a cabinet with that secret and that many compartments
// starts from: nil for one the memory does not have, or has from another
// provisioning (another secret, or another number of compartments).
func (m *fleetMemory) resume(site, cabinet, secret string, compartments int) *twin.Memory {
	key := memoryKey(site, cabinet)
	mem, ok := m.Cabinets[key]
	if login, known := m.Logins[key]; known && login != loginOf(secret) {
		return nil
	}
	if !ok || len(mem.Occupied) != compartments || len(mem.Jammed) != 0 && len(mem.Jammed) != compartments {
		return nil
	}
	return &mem
}

// keep records what a cabinet with that secret remembers now.
func (m *fleetMemory) keep(site, cabinet, secret string, mem twin.Memory) {
	if m.Logins == nil {
		m.Logins = map[string]string{}
	}
	key := memoryKey(site, cabinet)
	m.Cabinets[key], m.Logins[key] = mem, loginOf(secret)
}

// save writes the memory atomically and durably, so that a fleet killed
// mid-write, or a machine that loses power, leaves the previous one.
func (m *fleetMemory) save(path string) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}
