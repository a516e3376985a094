//go:build !amd64 || purego

package hmacsha

const haveSHANI = false

func blockSHANI(*[8]uint32, []byte) { panic("hmacsha: no SHA-NI block function on this build") }
