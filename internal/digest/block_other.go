//go:build !amd64 || purego

package digest

const haveSHANI = false

func blockSHANI(*[8]uint32, []byte) { panic("digest: no SHA-NI block function on this build") }
