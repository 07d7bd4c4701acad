// Package procfs reads Linux's /proc for the tests and the bench programs: which processes
// run (by command name and working directory), and what one costs in CPU and memory. It is
// a package apart from testenv so that the bench programs can use it without linking an
// embedded etcd server and package testing.
package procfs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Proc is one process seen in /proc. A field that cannot be read (the process is gone, or
// belongs to another user) is empty.
type Proc struct {
	PID  int
	Comm string // command name, from /proc/PID/comm
	Cwd  string // working directory, from /proc/PID/cwd
}

// Scan lists the processes for which keep returns true, in /proc's order. Supervisors and
// the processes they start are found by name and working directory: runsv, run and finish
// work in their service directory.
func Scan(keep func(Proc) bool) []Proc {
	var procs []Proc
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		p := Proc{PID: pid, Comm: strings.TrimSpace(string(comm)), Cwd: cwd}
		if keep(p) {
			procs = append(procs, p)
		}
	}
	return procs
}

// Cmdline returns the process's arguments, from /proc/PID/cmdline; [""] when it cannot
// be read.
func (p Proc) Cmdline() []string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// ClockTicks is USER_HZ, the unit of CPU: 100 on every Linux this runs on.
const ClockTicks = 100

// CPU returns utime+stime of pid in clock ticks; with children, also the CPU of its
// reaped children (cutime+cstime), which is where a shell loop's etcdctl runs show up.
func CPU(pid int, children bool) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cannot read CPU of %d: %w", pid, err)
	}
	// Fields after the ")" that ends the command name: state is field 3, utime 14, stime
	// 15, cutime 16, cstime 17.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var sum int64
	n := 2
	if children {
		n = 4
	}
	for _, v := range f[11 : 11+n] {
		x, _ := strconv.ParseInt(v, 10, 64)
		sum += x
	}
	return sum, nil
}

// RSS returns VmRSS of pid in bytes.
func RSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("cannot read memory of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}
