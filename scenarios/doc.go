// Package scenarios holds the scenario YAML schema (v1), its strict loader
// and validator, and the scenario files lockertwin ships.
//
// What it is for: turning a planner's YAML into a checked Go value, or into
// every problem with it at once, each as file:line:col, with errors apart
// from warnings. The schema is the contract in DESIGN.md: keys may be added;
// none is renamed without a version bump.
//
// What it must never do: import any other lockertwin package, silently ignore
// an unknown or duplicate key, or stop at the first problem.
package scenarios
