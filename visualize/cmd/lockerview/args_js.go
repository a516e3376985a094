//go:build js

package main

import (
	"net/url"
	"syscall/js"
)

// programArgs reads the page's query string: ?scenario=NAME (a shipped
// scenario) and ?speed=N.
func programArgs() []string {
	q, _ := url.ParseQuery(js.Global().Get("location").Get("search").String()[min(1, len(js.Global().Get("location").Get("search").String())):])
	name := q.Get("scenario")
	if name == "" {
		name = "residential-tower.yaml"
	}
	args := []string{"-shipped", name}
	if s := q.Get("speed"); s != "" {
		args = append(args, "-speed", s)
	}
	return args
}
