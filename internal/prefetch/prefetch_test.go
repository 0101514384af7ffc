package prefetch

import (
	"testing"
	"unsafe"
)

// Line must be safe on any address: the hit path prefetches slots whose
// contents may change under it.
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
