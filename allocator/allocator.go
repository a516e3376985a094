package allocator

import "fmt"

// HookEvent names a point in an assignment that a Hook may observe.
type HookEvent uint8

const (
	// OnAssignEvent: before a chosen compartment is reserved; may veto.
	OnAssignEvent HookEvent = iota
	// OnAssignedEvent: after a compartment was reserved for a request.
	OnAssignedEvent
	// OnRefusedEvent: after a request was refused.
	OnRefusedEvent
)

// Hook watches allocation decisions. Following mochi-mqtt's naming, the
// present-tense OnAssign may veto (return an error) and the past-tense
// methods only notify. Embed HookBase and override what you need; Provides
// says which methods the Allocator calls.
type Hook interface {
	Provides(HookEvent) bool
	OnAssign(req Request, id CompartmentID) error
	OnAssigned(req Request, id CompartmentID)
	OnRefused(req Request, err error)
}

// HookBase provides no-op defaults for Hook.
type HookBase struct{}

func (HookBase) Provides(HookEvent) bool               { return false }
func (HookBase) OnAssign(Request, CompartmentID) error { return nil }
func (HookBase) OnAssigned(Request, CompartmentID)     {}
func (HookBase) OnRefused(Request, error)              {}

// VetoError is returned when a hook vetoed an assignment.
type VetoError struct {
	Compartment CompartmentID
	Err         error
}

func (e *VetoError) Error() string {
	return fmt.Sprintf("assignment of compartment %d vetoed: %v", e.Compartment, e.Err)
}

// Unwrap exposes both the veto refusal and the hook's reason.
func (e *VetoError) Unwrap() []error { return []error{errVetoed, e.Err} }

var errVetoed error = &RefusalError{ReasonVetoed}

// Allocator assigns compartments of one inventory with one policy, and lets
// hooks watch or veto. It is what the controller calls per parcel.
type Allocator struct {
	inv    *Inventory
	policy Policy

	assign, assigned, refused []Hook
}

// NewAllocator ties a policy to an inventory.
func NewAllocator(inv *Inventory, p Policy) *Allocator {
	return &Allocator{inv: inv, policy: p}
}

// Inventory returns the allocator's inventory.
func (a *Allocator) Inventory() *Inventory { return a.inv }

// Policy returns the allocator's policy.
func (a *Allocator) Policy() Policy { return a.policy }

// AddHook attaches h for the events it provides.
func (a *Allocator) AddHook(h Hook) {
	if h.Provides(OnAssignEvent) {
		a.assign = append(a.assign, h)
	}
	if h.Provides(OnAssignedEvent) {
		a.assigned = append(a.assigned, h)
	}
	if h.Provides(OnRefusedEvent) {
		a.refused = append(a.refused, h)
	}
}

// Assign chooses a compartment for req and reserves it. A refusal is a
// *RefusalError (ReasonOf tells which) or a *VetoError.
func (a *Allocator) Assign(req Request) (CompartmentID, error) {
	id, err := a.policy.Choose(a.inv, req)
	if err == nil {
		for _, h := range a.assign {
			if verr := h.OnAssign(req, id); verr != nil {
				err = &VetoError{Compartment: id, Err: verr}
				break
			}
		}
	}
	if err == nil {
		if rerr := a.inv.Reserve(id); rerr != nil {
			// A policy broke its contract: never hand this out.
			panic(fmt.Sprintf("allocator: policy %s chose compartment %d: %v", a.policy.Name(), id, rerr))
		}
		for _, h := range a.assigned {
			h.OnAssigned(req, id)
		}
		return id, nil
	}
	for _, h := range a.refused {
		h.OnRefused(req, err)
	}
	return NoCompartment, err
}
