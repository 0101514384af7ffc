package prefetch

import (
	"testing"
	"unsafe"
)

// Line must not fault on nil or on either end of an object: the hit path
// prefetches slots that may be empty. (An address that faults would crash
// the test binary, which is how this test fails.)
func TestLineNeverFaults(t *testing.T) {
	var x [128]byte
	for _, p := range []unsafe.Pointer{nil, unsafe.Pointer(&x), unsafe.Pointer(&x[127])} {
		Line(p)
	}
}

func BenchmarkLine(b *testing.B) {
	buf := make([]byte, 1<<20)
	i := 0
	for b.Loop() {
		Line(unsafe.Pointer(&buf[i]))
		i = (i + 4096 + 64) & (len(buf) - 1)
	}
}
