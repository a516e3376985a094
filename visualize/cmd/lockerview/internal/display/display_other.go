//go:build !linux || android

package display

// Problem is "" where the display is not an X server named by DISPLAY.
func Problem(string) string { return "" }
