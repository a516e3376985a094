package world

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lockertwin/lockertwin/scenarios"
)

// Counts a replication reports only when they occur: a replication without
// one reports no KPI of that name, which reads as zero, as alarms_<kind> does
// for a kind of alarm that was not raised.
const (
	kpiDepositDoorFailures  = "deposit_door_failures"
	kpiPickupDoorFailures   = "pickup_door_failures"
	kpiReturnDoorFailures   = "return_door_failures"
	kpiDepositsCancelled    = "deposits_cancelled"
	kpiPickupsLockerOffline = "pickups_locker_offline"
	kpiRemovedByStaff       = "parcels_removed_by_staff"
)

var occasionalCounts = []string{
	kpiDepositDoorFailures, kpiPickupDoorFailures, kpiReturnDoorFailures,
	kpiDepositsCancelled, kpiPickupsLockerOffline, kpiRemovedByStaff,
}

// kpiTempExcursionHours is the place-hours (compartment-hours, in the
// virtual cabinets) that chilled compartments spent out of their range:
// from the cabinet's temp_out_of_range fault to its back-in-range report.
// Reported by a scenario with a chilled class.
const kpiTempExcursionHours = "temp_excursion_hours"

// kpiTempExposed is the parcels that left the locker in the measured
// horizon (picked up, returned or removed) having been in it during a
// temperature excursion: in their compartment while it was out of range,
// or chilled in a cabinet that was (controller.ParcelInfo.TempExcursion).
// Reported by a scenario with a chilled class.
const kpiTempExposed = "parcels_temp_exposed"

// hasChilled says whether sc has a chilled compartment class: the only
// compartments whose temperature the virtual cabinet follows.
func hasChilled(sc *scenarios.Scenario) bool {
	for _, cl := range sc.CompartmentClasses {
		if cl.Zone == scenarios.ZoneChilled {
			return true
		}
	}
	return false
}

// alarmPrefix starts the KPI of each kind of alarm raised: the kinds are
// open-ended (a cabinet names its own faults).
const alarmPrefix = "alarms_"

// KPINames lists the KPIs every replication of sc reports, in the order it
// reports them. A replication may also report the occasional counts and an
// alarms_<kind> per kind of alarm raised (CheckKPI accepts those).
func KPINames(sc *scenarios.Scenario) []string {
	names := []string{"offered", "accepted", "refused", "overflow_rate", "redirected", "deferred",
		"occupancy_mean", "utilization"}
	for _, cl := range sc.CompartmentClasses {
		names = append(names, "utilization_"+cl.Name)
	}
	names = append(names, "picked_up", "expired", "returned",
		"dwell_hours_mean", "dwell_hours_p50", "dwell_hours_p90",
		"pickup_delay_hours_p50", "pickup_delay_hours_p90", "door_rtt_ms_p50", "door_rtt_ms_p99",
		"courier_stops", "distance_saved_km")
	if hasChilled(sc) {
		names = append(names, kpiTempExcursionHours, kpiTempExposed)
	}
	return append(names, "alarms_total")
}

// CheckKPI says whether a replication of sc can report a KPI of this
// name, so that a tool refuses a misspelt one before it simulates
// anything: nil if it can, else an error naming the closest KPI, or every
// one when none is close.
func CheckKPI(sc *scenarios.Scenario, name string) error {
	if len(name) > len(alarmPrefix) && strings.HasPrefix(name, alarmPrefix) {
		return nil
	}
	known := append(KPINames(sc), occasionalCounts...)
	for _, k := range known {
		if k == name {
			return nil
		}
	}
	known = append(known, alarmPrefix+"<kind>")
	// A KPI's name is often cut short ("overflow", "dwell_hours"): name
	// the ones it starts, if few, before looking for a misspelling.
	var starts []string
	for _, k := range known {
		if name != "" && strings.HasPrefix(k, name) {
			starts = append(starts, strconv.Quote(k))
		}
	}
	switch {
	case len(starts) == 1:
		return fmt.Errorf("unknown KPI %q (did you mean %s?)", name, starts[0])
	case len(starts) > 1 && len(starts) <= 4:
		return fmt.Errorf("unknown KPI %q (did you mean one of %s?)", name, strings.Join(starts, ", "))
	}
	return fmt.Errorf("unknown KPI %q%s", name, scenarios.Suggest(name, known))
}
