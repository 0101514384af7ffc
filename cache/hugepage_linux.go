package cache

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

const hugePage = 2 << 20

// newFront allocates a front table of n slots and asks Linux to back it
// with 2 MiB pages, returning the table and the bytes allocated for it.
//
// A hit's first memory access is a random slot of this table of
// megabytes; with 4 KiB pages that is a TLB miss as well as a cache miss,
// and in a virtual machine a TLB miss walks two sets of page tables. With
// the table on huge pages (where transparent huge pages are "always" or
// "madvise", the kernel's default), two sets of six paired open-loop runs
// at 40,000 req/s with 10,000 tokens took 0.07 to 0.32 µs of server CPU
// off every request (both means 0.22). The Go heap does not ask for huge
// pages itself.
//
// A table smaller than a huge page is allocated as it is; a larger one is
// allocated a huge page larger, so that it can start on a huge-page
// boundary.
func newFront[T any](n int) ([]atomic.Pointer[T], int64) {
	const slot = int(unsafe.Sizeof(atomic.Pointer[T]{}))
	if n*slot < hugePage {
		return make([]atomic.Pointer[T], n), int64(n * slot)
	}
	raw := make([]atomic.Pointer[T], n+hugePage/slot)
	start := uintptr(unsafe.Pointer(unsafe.SliceData(raw)))
	off := int((hugePage-start%hugePage)%hugePage) / slot
	front := raw[off : off+n : off+n]
	// Only the kernel's advice: the table works the same without it.
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(front))), n*slot), unix.MADV_HUGEPAGE)
	return front, int64(len(raw) * slot)
}
