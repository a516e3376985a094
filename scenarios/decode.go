package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a position in a scenario file, 1-based like editors show it.
type Pos struct {
	Line, Col int
}

// Severity separates what stops a run from what a planner should look at.
type Severity uint8

const (
	// Error: the scenario cannot be run.
	Error Severity = iota
	// Warning: the scenario runs, but probably not as its author meant.
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// Problem is one thing wrong with a scenario, located in its file.
type Problem struct {
	File     string
	Pos      Pos
	Path     string // dotted key path, e.g. demand.size_mix.S
	Severity Severity
	Message  string
}

func (p Problem) String() string {
	prefix := ""
	if p.Severity == Warning {
		prefix = "warning: "
	}
	if p.Pos.Line == 0 { // the file as a whole: it could not be read
		return fmt.Sprintf("%s: %s%s", p.File, prefix, p.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s%s", p.File, p.Pos.Line, p.Pos.Col, prefix, p.Message)
}

// Problems is every problem found in a file, in file order. As an error it
// prints one problem per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Errors returns the problems of severity Error.
func (ps Problems) Errors() Problems { return ps.filter(Error) }

// Warnings returns the problems of severity Warning.
func (ps Problems) Warnings() Problems { return ps.filter(Warning) }

func (ps Problems) filter(s Severity) Problems {
	var out Problems
	for _, p := range ps {
		if p.Severity == s {
			out = append(out, p)
		}
	}
	return out
}

// Sort orders problems by position in the file.
func (ps Problems) Sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Pos, ps[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// nodeDecoder is implemented by types that decode themselves from YAML,
// reporting problems through the decoder rather than stopping at the first.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

// decoder walks a yaml.Node tree into Go values strictly: unknown keys,
// duplicate keys and type mismatches are all reported with their line and
// column, and decoding goes on so that one pass finds every problem.
type decoder struct {
	file     string
	top      string // what the document is, in messages about its top level: "" is "the scenario"
	problems Problems
	pos      map[string]Pos
	failed   map[string]bool // paths whose value could not be decoded
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.failed[path] = true
	d.problems = append(d.problems, Problem{
		File: d.file, Pos: Pos{n.Line, n.Column}, Path: path, Severity: Error,
		Message: fmt.Sprintf(format, args...),
	})
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

var nodeDecoderType = reflect.TypeFor[nodeDecoder]()

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = Pos{n.Line, n.Column}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "%s: expected a list, got %s", path, describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), indexPath(path, i))
		}
		v.Set(s)
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.String:
		if s, ok := d.scalar(n, path); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if s, ok := d.scalar(n, path); ok {
			i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
			if err != nil {
				d.errorf(n, path, "%s: expected a whole number, got %q", path, s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Uint64, reflect.Uint, reflect.Uint32:
		if s, ok := d.scalar(n, path); ok {
			i, err := strconv.ParseUint(strings.ReplaceAll(s, "_", ""), 0, 64)
			if err != nil {
				d.errorf(n, path, "%s: expected a non-negative whole number, got %q", path, s)
				return
			}
			v.SetUint(i)
		}
	case reflect.Float64:
		if s, ok := d.scalar(n, path); ok {
			f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
			if err != nil {
				d.errorf(n, path, "%s: expected a number, got %q", path, s)
				return
			}
			v.SetFloat(f)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, path); ok {
			switch s {
			case "true":
				v.SetBool(true)
			case "false":
				v.SetBool(false)
			default:
				d.errorf(n, path, "%s: expected true or false, got %q", path, s)
			}
		}
	default:
		panic(fmt.Sprintf("scenarios: no decoder for %s", v.Type()))
	}
}

func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "%s: expected a single value, got %s", path, describe(n))
		return "", false
	}
	return n.Value, true
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// field is a struct field with its YAML key.
type field struct {
	key   string
	index int
}

func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == "" || tag == "-" || !sf.IsExported() {
			continue
		}
		fs = append(fs, field{key: strings.Split(tag, ",")[0], index: i})
	}
	return fs
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		if isNull(n) {
			return
		}
		d.errorf(n, path, "%s: expected a mapping, got %s", d.orTop(path), describe(n))
		return
	}
	fs := fieldsOf(v.Type())
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		if first, dup := seen[key]; dup {
			d.errorf(k, joinPath(path, key), "duplicate key %q (first at line %d)", key, first.Line)
			continue
		}
		seen[key] = k
		var f *field
		for j := range fs {
			if fs[j].key == key {
				f = &fs[j]
				break
			}
		}
		if f == nil {
			keys := make([]string, len(fs))
			for j, ff := range fs {
				keys[j] = ff.key
			}
			d.errorf(k, joinPath(path, key), "unknown key %q in %s%s", key, d.orTop(path), Suggest(key, keys))
			continue
		}
		d.decode(val, v.Field(f.index), joinPath(path, key))
	}
}

func (d *decoder) orTop(path string) string {
	switch {
	case path != "":
		return path
	case d.top != "":
		return d.top
	}
	return "the scenario"
}

// Suggest returns ` (did you mean "x"?)` for the closest known name within
// a small edit distance, or a list of the known names when nothing is
// close: the tail of an "unknown name" message, here and in the tools.
func Suggest(got string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(got), strings.ToLower(k)); dist < bestD {
			best, bestD = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(known) == 0 {
		return ""
	}
	return " (known: " + strings.Join(known, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Entry is one key of an ordered mapping.
type Entry[V any] struct {
	Key   string
	Value V
}

// Ordered is a YAML mapping whose key order is kept, so that outputs that
// list its keys (per-class tables, say) follow the file, not Go's map order.
type Ordered[V any] []Entry[V]

func (o *Ordered[V]) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode {
		if isNull(n) {
			return
		}
		d.errorf(n, path, "%s: expected a mapping, got %s", path, describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, joinPath(path, k.Value), "duplicate key %q (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		var e Entry[V]
		e.Key = k.Value
		d.pos[joinPath(path, k.Value)+"#key"] = Pos{k.Line, k.Column}
		d.decode(val, reflect.ValueOf(&e.Value).Elem(), joinPath(path, k.Value))
		*o = append(*o, e)
	}
}

// Get returns the value for key and whether it is present.
func (o Ordered[V]) Get(key string) (V, bool) {
	for _, e := range o {
		if e.Key == key {
			return e.Value, true
		}
	}
	var zero V
	return zero, false
}

// DecodeStrict decodes one YAML document into v (a pointer to a struct with
// `yaml` tags) the way scenarios are decoded: unknown and duplicate keys and
// type mismatches are problems located as file:line:col, all reported at
// once. Other lockertwin configuration files (lockerd's) use it, so the
// top level is "the file" in its messages, not "the scenario".
func DecodeStrict(file string, data []byte, v any) Problems {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file: every setting keeps its default
		}
		return Problems{syntaxProblem(file, err)}
	}
	d := &decoder{file: file, top: "the file", pos: map[string]Pos{}, failed: map[string]bool{}}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "", "the file holds one YAML document; found another")
	} else if !errors.Is(err, io.EOF) {
		return Problems{syntaxProblem(file, err)}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	d.decode(doc, reflect.ValueOf(v).Elem(), "")
	d.problems.Sort()
	return d.problems
}
