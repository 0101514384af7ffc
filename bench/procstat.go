package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// ProcSample is a reading of a process's CPU time and resident memory.
type ProcSample struct {
	CPU time.Duration // utime + stime, all threads, in clock ticks
	RSS int64         // bytes
}

// readProc samples /proc/PID; pid 0 means this process.
func readProc(pid int) (ProcSample, error) {
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	b, err := os.ReadFile("/proc/" + p + "/stat")
	if err != nil {
		return ProcSample{}, err
	}
	cpu, err := parseStatCPU(b)
	if err != nil {
		return ProcSample{}, fmt.Errorf("/proc/%s/stat: %w", p, err)
	}
	s := ProcSample{CPU: cpu}
	if st, err := os.ReadFile("/proc/" + p + "/status"); err == nil {
		if v := statusField(st, "VmRSS:"); v != "" {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
			s.RSS = kb << 10
		}
	}
	return s, nil
}

// parseStatCPU returns utime+stime (fields 14 and 15) from a /proc/PID/stat
// line. The command name (field 2) may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command field")
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, errors.New("short line")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * clockTick, nil
}

func statusField(b []byte, key string) string {
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// procInfo describes a process for the report: its command line (with any
// -client-secret value hidden, see redactArgs) and the CPUs it may run on
// (as pinned by taskset).
type procInfo struct {
	PID     int      `json:"pid"`
	Command []string `json:"command,omitempty"`
	CPUs    string   `json:"cpus,omitempty"`
}

func readProcInfo(pid int) procInfo {
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	info := procInfo{PID: pid}
	if pid == 0 {
		info.PID = os.Getpid()
	}
	if b, err := os.ReadFile("/proc/" + p + "/cmdline"); err == nil {
		info.Command = redactArgs(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"))
	}
	if b, err := os.ReadFile("/proc/" + p + "/status"); err == nil {
		info.CPUs = statusField(b, "Cpus_allowed_list:")
	}
	return info
}
