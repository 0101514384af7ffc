//go:build !linux

package cache

import (
	"sync/atomic"
	"unsafe"
)

// newFront allocates a front table of n slots, returning it and the bytes
// allocated for it (huge pages are asked for only on Linux).
func newFront[T any](n int) ([]atomic.Pointer[T], int64) {
	return make([]atomic.Pointer[T], n), int64(n) * int64(unsafe.Sizeof(atomic.Pointer[T]{}))
}
