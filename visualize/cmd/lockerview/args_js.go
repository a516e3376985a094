//go:build js

package main

import (
	"net/url"
	"syscall/js"
)

// inPage: the view runs in a browser page, whose visitor does not read the
// console.
const inPage = true

// showError puts a message in the page's status line (light on the dark
// page Ebiten leaves when the view cannot start), and on the console.
func showError(msg string) {
	println(msg)
	st := js.Global().Get("document").Call("getElementById", "status")
	if !st.Truthy() {
		return
	}
	st.Set("textContent", msg)
	st.Get("style").Set("color", "#fafaf7")
}

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
