package cache

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// TestFrontOnHugePages: a front table of a huge page or more starts on a
// huge-page boundary and is advised for huge pages (the "hg" flag of its
// mapping), and its bytes, alignment slack included, come out of the
// budget. Whether the kernel then backs it with huge pages depends on its
// settings and free memory, so that is not tested.
func TestFrontOnHugePages(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage"); err != nil {
		t.Skip("this kernel has no transparent huge pages")
	}
	const maxBytes = 1 << 30
	c, err := New[val](Config{MaxBytes: maxBytes, AvgEntryBytes: 1024, Front: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.front) != 1<<20 {
		t.Fatalf("front table of %d slots, want %d", len(c.front), 1<<20)
	}
	start := uintptr(unsafe.Pointer(&c.front[0]))
	if start%hugePage != 0 {
		t.Fatalf("front table at %#x, not on a huge-page boundary", start)
	}
	if got, want := c.rc.MaxCost(), int64(maxBytes-8<<20-hugePage); got != want {
		t.Errorf("ristretto budget %d, want %d (MaxBytes less the table and its slack)", got, want)
	}
	flags := vmFlags(t, start)
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Errorf("front table's mapping has VmFlags %q, no hg (MADV_HUGEPAGE)", flags)
	}

	small, err := New[val](Config{MaxBytes: 1 << 20, Front: true})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if got, want := small.rc.MaxCost(), int64(1<<20-len(small.front)*8); got != want {
		t.Errorf("small table: ristretto budget %d, want %d", got, want)
	}
}

// vmFlags returns the VmFlags line of the mapping that holds addr.
func vmFlags(t *testing.T, addr uintptr) string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if lo, hi, ok := mappingRange(line); ok {
			in = lo <= addr && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmFlags:"))
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return ""
}

// mappingRange parses the range of an smaps mapping line ("lo-hi perms ...").
func mappingRange(line string) (lo, hi uintptr, ok bool) {
	r, _, found := strings.Cut(line, " ")
	a, b, dash := strings.Cut(r, "-")
	if !found || !dash {
		return 0, 0, false
	}
	x, err1 := strconv.ParseUint(a, 16, 64)
	y, err2 := strconv.ParseUint(b, 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uintptr(x), uintptr(y), true
}
