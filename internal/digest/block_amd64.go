//go:build amd64 && !purego

package digest

import "golang.org/x/sys/cpu"

// blockSHANI runs SHA-256's compression function over p's whole 64-byte
// blocks, updating h.
//
//go:noescape
func blockSHANI(h *[8]uint32, p []byte)

// cpuid executes the CPUID instruction for leaf eaxArg, subleaf ecxArg.
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// haveSHANI: the SHA extensions (CPUID leaf 7, EBX bit 29) and what else
// blockSHANI uses, as crypto/internal/fips140/sha256 requires them (AVX
// with the operating system saving its registers, SSE4.1, SSSE3).
var haveSHANI = cpu.X86.HasAVX && cpu.X86.HasSSE41 && cpu.X86.HasSSSE3 && hasSHA()

func hasSHA() bool {
	if max, _, _, _ := cpuid(0, 0); max < 7 {
		return false
	}
	_, ebx, _, _ := cpuid(7, 0)
	return ebx&(1<<29) != 0
}
