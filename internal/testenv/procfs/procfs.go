// Package procfs reads Linux's /proc for the tests and the bench programs: which processes
// run (by command name and working directory), and what one costs in CPU and memory. It is
// a package apart from testenv so that the bench programs can use it without linking an
// embedded etcd server and package testing.
package procfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
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

// Memory is a process's memory as /proc/PID/smaps_rollup sums it over its mappings, in
// bytes. Of many copies of one program, Rss counts the shared binary text once per
// process; Pss divides each shared page among the processes that map it, so the Pss of
// all processes adds up to what they cost together; Private is what one more copy costs.
type Memory struct {
	Rss, Pss, PrivateClean, PrivateDirty, SharedClean, SharedDirty, Anonymous, Swap int64
}

// Private is the memory only this process maps: Private_Clean + Private_Dirty.
func (m Memory) Private() int64 { return m.PrivateClean + m.PrivateDirty }

// Add returns the field-by-field sum of m and o (a process and its children).
func (m Memory) Add(o Memory) Memory {
	return Memory{m.Rss + o.Rss, m.Pss + o.Pss, m.PrivateClean + o.PrivateClean, m.PrivateDirty + o.PrivateDirty,
		m.SharedClean + o.SharedClean, m.SharedDirty + o.SharedDirty, m.Anonymous + o.Anonymous, m.Swap + o.Swap}
}

// Rollup reads /proc/PID/smaps_rollup (Linux 4.14 and later).
func Rollup(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("cannot read memory of %d: %w", pid, err)
	}
	defer f.Close()
	m, err := ParseRollup(f)
	if err != nil {
		return Memory{}, fmt.Errorf("cannot read memory of %d: %w", pid, err)
	}
	return m, nil
}

// ParseRollup reads the text of a smaps_rollup (or of one smaps mapping): "Name: N kB"
// lines, after a header line of address range and mapping name. Lines it does not know
// are skipped; a file without an Rss line is an error (a process being reaped reads
// empty).
func ParseRollup(r io.Reader) (Memory, error) {
	var m Memory
	fields := map[string]*int64{
		"Rss": &m.Rss, "Pss": &m.Pss, "Private_Clean": &m.PrivateClean, "Private_Dirty": &m.PrivateDirty,
		"Shared_Clean": &m.SharedClean, "Shared_Dirty": &m.SharedDirty, "Anonymous": &m.Anonymous, "Swap": &m.Swap,
	}
	seen := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		p := fields[name]
		if !ok || p == nil {
			continue
		}
		v := strings.Fields(rest)
		if len(v) != 2 || v[1] != "kB" {
			return Memory{}, fmt.Errorf("smaps line %q: want \"%s: N kB\"", sc.Text(), name)
		}
		kb, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("smaps line %q: %w", sc.Text(), err)
		}
		*p = kb * 1024
		seen = seen || name == "Rss"
	}
	if err := sc.Err(); err != nil {
		return Memory{}, err
	}
	if !seen {
		return Memory{}, errors.New("no Rss line in smaps_rollup")
	}
	return m, nil
}

// Children returns the PIDs of pid's child processes (all its threads' children), from
// /proc/PID/task/*/children; none when they cannot be read.
func Children(pid int) []int {
	var pids []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				pids = append(pids, c)
			}
		}
	}
	return pids
}
