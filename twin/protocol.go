package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ProtocolVersion is the cabinet wire protocol version carried in every
// payload ("v") and in every topic (lockers/v1/...).
const ProtocolVersion = 1

// MaxPayloadBytes bounds every payload; a larger one is rejected unread.
const MaxPayloadBytes = 64 << 10

// MaxCompartments bounds a cabinet's compartment numbers.
const MaxCompartments = 512

// CommandType is what a command asks a cabinet to do.
type CommandType string

const (
	// CmdOpen unlocks one compartment's door.
	CmdOpen CommandType = "open"
	// CmdSync asks the cabinet to publish its full reported state now.
	CmdSync CommandType = "sync"
)

// Command is a controller → cabinet message on .../cmd (QoS 1, not retained).
// A cabinet executes a command id at most once, acknowledges every copy it
// receives, and rejects (nack "expired") a command past ExpiresAt.
type Command struct {
	V           int         `json:"v"`
	ID          string      `json:"id"`
	Type        CommandType `json:"type"`
	Compartment int         `json:"compartment,omitempty"`
	IssuedAt    time.Time   `json:"issued_at"`
	ExpiresAt   time.Time   `json:"expires_at"`
}

// EventType is what a cabinet reports.
type EventType string

const (
	EvtAck        EventType = "ack"         // command received and executed (or already executed)
	EvtNack       EventType = "nack"        // command refused: Reason says why
	EvtDoorOpened EventType = "door_opened" // a door opened (Command says which command, if any)
	EvtDoorClosed EventType = "door_closed" // a door closed; Occupied is the sensor reading at closing
	EvtOccupancy  EventType = "occupancy"   // the occupancy sensor changed while the door was closed
	EvtTemp       EventType = "temperature" // back in range after a temp_out_of_range fault (TempC says at what)
	EvtFault      EventType = "fault"       // Fault says what: jam, door_left_open, temp_out_of_range, ...
	EvtPin        EventType = "pin_entered" // a code typed on the keypad (Code)
	EvtHeartbeat  EventType = "heartbeat"   // the cabinet is alive
)

// Nack reasons.
const (
	NackExpired            = "expired"
	NackUnknownCompartment = "unknown_compartment"
	NackJammed             = "jammed"
	NackUnsupported        = "unsupported"
)

// Fault kinds.
const (
	FaultJam           = "jam"
	FaultDoorLeftOpen  = "door_left_open"
	FaultTempRange     = "temp_out_of_range"
	FaultSensor        = "sensor"
	FaultUncommanded   = "uncommanded_open"
	FaultPowerRestored = "power_restored"
)

// Event is a cabinet → controller message on .../evt (QoS 1). ID is unique
// per cabinet; Seq increases by one per event of a cabinet (across
// reconnects), so the controller can drop duplicates and notice gaps.
type Event struct {
	V           int       `json:"v"`
	ID          string    `json:"id"`
	Seq         uint64    `json:"seq"`
	Type        EventType `json:"type"`
	At          time.Time `json:"at"`
	Compartment int       `json:"compartment,omitempty"`
	Command     string    `json:"command,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Occupied    *bool     `json:"occupied,omitempty"`
	TempC       *float64  `json:"temp_c,omitempty"`
	Fault       string    `json:"fault,omitempty"`
	Code        string    `json:"code,omitempty"`
}

// DoorState is a door's reported state.
type DoorState string

const (
	DoorLocked DoorState = "locked"
	DoorOpen   DoorState = "open"
	DoorJammed DoorState = "jammed"
)

// CompartmentState is one compartment in a reported state document.
type CompartmentState struct {
	Compartment int       `json:"compartment"`
	Door        DoorState `json:"door"`
	Occupied    bool      `json:"occupied"`
	TempC       *float64  `json:"temp_c,omitempty"`
	// TempAlarm: the compartment's temperature is out of range (from its
	// temp_out_of_range fault until its temperature event); with TempC.
	TempAlarm bool `json:"temp_alarm,omitempty"`
}

// State is a cabinet's reported state on .../state (QoS 1, retained).
// Version increases whenever the reported state changes; Seq is the
// sequence number of the last event published before it.
type State struct {
	V            int                `json:"v"`
	Cabinet      string             `json:"cabinet"`
	Version      uint64             `json:"version"`
	Seq          uint64             `json:"seq"`
	Firmware     string             `json:"firmware"`
	At           time.Time          `json:"at"`
	Compartments []CompartmentState `json:"compartments"`
}

// Status payloads on .../status (QoS 1, retained). The offline one is the
// cabinet's last will.
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// ProtocolError says what is wrong with a message. Decoders return it for
// every malformed input; nothing else escapes them.
type ProtocolError struct {
	What string // "command", "event", "state", "status", "topic"
	Msg  string
}

func (e *ProtocolError) Error() string { return "invalid " + e.What + ": " + e.Msg }

// ErrInvalid matches every ProtocolError with errors.Is.
var ErrInvalid = errors.New("invalid message")

func (e *ProtocolError) Is(target error) bool { return target == ErrInvalid }

func invalid(what, format string, args ...any) error {
	return &ProtocolError{What: what, Msg: fmt.Sprintf(format, args...)}
}

// MaxIDLen is the longest command or event id.
const MaxIDLen = 64

// AppendID appends an id made of a name (a site or cabinet id), a tag and a
// number in the given base ("city-7-c1234") to b. The number makes it
// unique; the name only says whose it is, and is cut short when the whole
// would pass MaxIDLen (site and cabinet ids may themselves be 64 characters
// long).
func AppendID(b []byte, name, tag string, n uint64, base int) []byte {
	var tail [64]byte
	t := append(tail[:0], tag...)
	return AppendNamedID(b, name, strconv.AppendUint(t, n, base))
}

// IDCounter makes the ids AppendID makes for one name and tag in base 10,
// for numbers that mostly follow one another (a cabinet's events, a core's
// commands): it keeps the last id and counts up in its bytes, a tenth of
// the work of formatting the number anew.
type IDCounter struct {
	last []byte // the last id made, numbered n
	n    uint64
}

// ID returns the id of number n, AppendID(nil, name, tag, n, 10), in a
// buffer that is good until the next call. name and tag are the same at
// every call, and tag does not end in a digit.
func (k *IDCounter) ID(name, tag string, n uint64) []byte {
	if n != k.n+1 || !countUp(k.last) {
		k.last = AppendID(k.last[:0], name, tag, n, 10)
	}
	k.n = n
	return k.last
}

// countUp adds one to the decimal number at the end of b, in place. False
// when the sum needs another digit (b is then to be made anew).
func countUp(b []byte) bool {
	for i := len(b) - 1; i >= 0 && b[i] >= '0' && b[i] <= '9'; i-- {
		if b[i] < '9' {
			b[i]++
			return true
		}
		b[i] = '0'
	}
	return false
}

// AppendNamedID appends name followed by tail (what makes the id unique)
// to b, cutting name short when the whole would pass MaxIDLen.
func AppendNamedID(b []byte, name string, tail []byte) []byte {
	if room := MaxIDLen - len(tail); len(name) > room {
		name = name[:max(room, 0)]
	}
	return append(append(b, name...), tail...)
}

// validID: 1–64 characters of [A-Za-z0-9._:-].
func validID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !idChar[s[i]] {
			return false
		}
	}
	return true
}

// idChar marks the characters of ids: every event has one or two, and a
// table looks a character up in one step instead of seven comparisons.
var idChar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
	}
	return t
}()

// strictUnmarshal decodes exactly one JSON object with no unknown fields and
// nothing after it.
func strictUnmarshal(what string, data []byte, v any) error {
	if len(data) > MaxPayloadBytes {
		return invalid(what, "payload of %d bytes exceeds %d", len(data), MaxPayloadBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid(what, "%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid(what, "trailing data after the JSON object")
	}
	return nil
}

// Validate checks a command's fields.
func (c *Command) Validate() error {
	switch {
	case c.V != ProtocolVersion:
		return invalid("command", "version %d, want %d", c.V, ProtocolVersion)
	case !validID(c.ID):
		return invalid("command", "id %q must be 1-64 characters of [A-Za-z0-9._:-]", c.ID)
	case c.IssuedAt.IsZero() || c.ExpiresAt.IsZero():
		return invalid("command", "issued_at and expires_at are required")
	case !c.ExpiresAt.After(c.IssuedAt):
		return invalid("command", "expires_at must be after issued_at")
	}
	switch c.Type {
	case CmdOpen:
		if c.Compartment < 1 || c.Compartment > MaxCompartments {
			return invalid("command", "open needs a compartment from 1 to %d, got %d", MaxCompartments, c.Compartment)
		}
	case CmdSync:
		if c.Compartment != 0 {
			return invalid("command", "sync takes no compartment")
		}
	default:
		return invalid("command", "unknown type %q", c.Type)
	}
	return nil
}

// Validate checks an event's fields against its type.
func (e *Event) Validate() error {
	switch {
	case e.V != ProtocolVersion:
		return invalid("event", "version %d, want %d", e.V, ProtocolVersion)
	case !validID(e.ID):
		return invalid("event", "id %q must be 1-64 characters of [A-Za-z0-9._:-]", e.ID)
	case e.Seq == 0:
		return invalid("event", "seq must start at 1")
	case e.At.IsZero():
		return invalid("event", "at is required")
	case e.Compartment < 0 || e.Compartment > MaxCompartments:
		return invalid("event", "compartment %d out of range", e.Compartment)
	case e.Command != "" && !validID(e.Command):
		return invalid("event", "command id %q is malformed", e.Command)
	case len(e.Reason) > 64 || len(e.Fault) > 64:
		return invalid("event", "reason or fault longer than 64 characters")
	}
	needCompartment := func() error {
		if e.Compartment == 0 {
			return invalid("event", "%s needs a compartment", e.Type)
		}
		return nil
	}
	switch e.Type {
	case EvtAck:
		if e.Command == "" {
			return invalid("event", "ack needs the command id")
		}
	case EvtNack:
		if e.Command == "" || e.Reason == "" {
			return invalid("event", "nack needs the command id and a reason")
		}
	case EvtDoorOpened:
		return needCompartment()
	case EvtDoorClosed, EvtOccupancy:
		if err := needCompartment(); err != nil {
			return err
		}
		if e.Occupied == nil {
			return invalid("event", "%s needs the occupancy reading", e.Type)
		}
	case EvtTemp:
		if e.TempC == nil || !validTemp(*e.TempC) {
			return invalid("event", "temperature needs temp_c between -60 and 90")
		}
	case EvtFault:
		if e.Fault == "" {
			return invalid("event", "fault needs a fault kind")
		}
		if e.Fault == FaultJam {
			return needCompartment() // a jam is one compartment's door
		}
	case EvtPin:
		if len(e.Code) < 4 || len(e.Code) > 32 {
			return invalid("event", "pin_entered needs a code of 4 to 32 characters")
		}
	case EvtHeartbeat:
	default:
		return invalid("event", "unknown type %q", e.Type)
	}
	return nil
}

// Validate checks a reported state document.
func (s *State) Validate() error {
	switch {
	case s.V != ProtocolVersion:
		return invalid("state", "version %d, want %d", s.V, ProtocolVersion)
	case !validSegment(s.Cabinet):
		return invalid("state", "cabinet %q must be 1-64 characters of [a-z0-9-]", s.Cabinet)
	case s.At.IsZero():
		return invalid("state", "at is required")
	case len(s.Firmware) > 64:
		return invalid("state", "firmware longer than 64 characters")
	case len(s.Compartments) > MaxCompartments:
		return invalid("state", "%d compartments, at most %d", len(s.Compartments), MaxCompartments)
	}
	for i, c := range s.Compartments {
		if c.Compartment != i+1 {
			return invalid("state", "compartments must be listed 1, 2, 3, …; entry %d says %d", i+1, c.Compartment)
		}
		switch c.Door {
		case DoorLocked, DoorOpen, DoorJammed:
		default:
			return invalid("state", "compartment %d: unknown door state %q", c.Compartment, c.Door)
		}
		switch {
		case c.TempC != nil && !validTemp(*c.TempC):
			return invalid("state", "compartment %d: temp_c must be between -60 and 90", c.Compartment)
		case c.TempAlarm && c.TempC == nil:
			return invalid("state", "compartment %d: temp_alarm needs the temp_c it was judged on", c.Compartment)
		}
	}
	return nil
}

// validTemp bounds a reported temperature: what a locker's sensor can read.
func validTemp(t float64) bool { return t >= -60 && t <= 90 }

// EncodeCommand validates and encodes a command.
func EncodeCommand(c *Command) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// DecodeCommand strictly decodes and validates a command.
func DecodeCommand(data []byte) (Command, error) {
	var c Command
	if err := strictUnmarshal("command", data, &c); err != nil {
		return Command{}, err
	}
	return c, c.Validate()
}

// EncodeEvent validates and encodes an event.
func EncodeEvent(e *Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// DecodeEvent strictly decodes and validates an event.
func DecodeEvent(data []byte) (Event, error) {
	var e Event
	if err := strictUnmarshal("event", data, &e); err != nil {
		return Event{}, err
	}
	return e, e.Validate()
}

// EncodeState validates and encodes a reported state.
func EncodeState(s *State) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// DecodeState strictly decodes and validates a reported state.
func DecodeState(data []byte) (State, error) {
	var s State
	if err := strictUnmarshal("state", data, &s); err != nil {
		return State{}, err
	}
	return s, s.Validate()
}

// DecodeStatus checks a status payload: exactly "online" or "offline".
func DecodeStatus(data []byte) (string, error) {
	switch s := string(data); s {
	case StatusOnline, StatusOffline:
		return s, nil
	}
	return "", invalid("status", "payload must be %q or %q", StatusOnline, StatusOffline)
}

// Channel is the last level of a cabinet topic.
type Channel string

const (
	ChanCmd    Channel = "cmd"
	ChanEvt    Channel = "evt"
	ChanState  Channel = "state"
	ChanStatus Channel = "status"
)

// TopicPrefix is the root of every cabinet topic.
const TopicPrefix = "lockers/v1/"

// Topic is a parsed cabinet topic.
type Topic struct {
	Site, Cabinet string
	Channel       Channel
}

func (t Topic) String() string {
	return TopicPrefix + t.Site + "/" + t.Cabinet + "/" + string(t.Channel)
}

// CabinetTopic returns the topic of a cabinet's channel.
func CabinetTopic(site, cabinet string, ch Channel) string {
	return Topic{Site: site, Cabinet: cabinet, Channel: ch}.String()
}

// validSegment: 1–64 characters of [a-z0-9-] (site and cabinet ids); no
// MQTT wildcards or separators can hide in one.
func validSegment(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidID reports whether s can name a site or cabinet in topics.
func ValidID(s string) bool { return validSegment(s) }

// ParseTopic parses lockers/v1/{site}/{cabinet}/{channel} exactly.
func ParseTopic(topic string) (Topic, error) {
	rest, ok := strings.CutPrefix(topic, TopicPrefix)
	if !ok {
		return Topic{}, invalid("topic", "%q is not under %s", topic, TopicPrefix)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return Topic{}, invalid("topic", "%q: want %s{site}/{cabinet}/{channel}", topic, TopicPrefix)
	}
	if !validSegment(parts[0]) || !validSegment(parts[1]) {
		return Topic{}, invalid("topic", "%q: site and cabinet must be 1-64 characters of [a-z0-9-]", topic)
	}
	ch := Channel(parts[2])
	switch ch {
	case ChanCmd, ChanEvt, ChanState, ChanStatus:
	default:
		return Topic{}, invalid("topic", "%q: unknown channel %q", topic, parts[2])
	}
	return Topic{Site: parts[0], Cabinet: parts[1], Channel: ch}, nil
}
