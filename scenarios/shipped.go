package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml
var shipped embed.FS

// Shipped lists the names of the scenario files that ship with lockertwin,
// sorted.
func Shipped() []string {
	names, _ := fs.Glob(shipped, "*.yaml")
	sort.Strings(names)
	return names
}

// LoadShipped parses and validates a shipped scenario by file name
// (e.g. "residential-tower.yaml").
func LoadShipped(name string) (*Scenario, Problems, error) {
	data, err := shipped.ReadFile(name)
	if err != nil {
		return nil, nil, fmt.Errorf("no shipped scenario %q (shipped: %s)", name, strings.Join(Shipped(), ", "))
	}
	return Parse("scenarios/"+name, data)
}
