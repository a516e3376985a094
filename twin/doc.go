// Package twin is the cabinet side of lockertwin: the cabinet wire protocol
// (MQTT topics and JSON payloads, v1), a virtual cabinet with doors, sensors,
// keypad and fault injection, the links that carry commands and events, the
// device shadow the controller keeps per cabinet, and the broker's
// deny-by-default access control.
//
// What it is for: making a virtual cabinet indistinguishable from a real one
// to the controller, in virtual time (the simulator) and in wall time
// (lockerfleet), and keeping every cabinet out of every other's topics.
//
// What it must never do: import any other lockertwin package, read the wall
// clock or global randomness in the virtual cabinet (a clock and named random
// streams are passed in), or accept a message it cannot fully validate.
package twin
