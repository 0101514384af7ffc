// Package prefetch asks the CPU to start loading memory that the caller
// will read soon, so that the load overlaps other work instead of stalling
// it. Go has no prefetch built-in for user code; a cache hit under load is
// mostly waiting on memory (see BenchmarkIntrospectHitSpread), so the hit
// path uses this to start its first load early.
package prefetch

import "unsafe"

// Line starts loading the cache line that holds p. It never faults, even
// for a nil or dangling p, and has no effect a program could observe but
// speed.
func Line(p unsafe.Pointer) { line(uintptr(p)) }
