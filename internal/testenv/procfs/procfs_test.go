package procfs

import (
	"os"
	"strings"
	"testing"
)

func TestScan_Self(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	self := Scan(func(p Proc) bool { return p.PID == os.Getpid() })
	if len(self) != 1 || self[0].Cwd != cwd || self[0].Comm == "" {
		t.Fatalf("Scan found %+v for this process, want one with cwd %s and a command name", self, cwd)
	}
	if args := self[0].Cmdline(); len(args) != len(os.Args) || args[0] != os.Args[0] {
		t.Errorf("Cmdline = %q, want %q", args, os.Args)
	}
	if rss, err := RSS(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("RSS = %d, %v; want a positive size", rss, err)
	}
	if _, err := CPU(os.Getpid(), true); err != nil {
		t.Errorf("CPU: %v", err)
	}
	if _, err := RSS(-1); err == nil {
		t.Error("RSS of no process: no error")
	}
}

// rollupSample is /proc/PID/smaps_rollup of an idle announcer (Linux 6.1).
const rollupSample = `00400000-7ffd3c5f3000 ---p 00000000 00:00 0                          [rollup]
Rss:                9876 kB
Pss:                4321 kB
Pss_Dirty:          3100 kB
Pss_Anon:           3100 kB
Pss_File:           1221 kB
Pss_Shmem:             0 kB
Shared_Clean:       6000 kB
Shared_Dirty:          0 kB
Private_Clean:       776 kB
Private_Dirty:      3100 kB
Referenced:         9876 kB
Anonymous:          3100 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
`

func TestParseRollup(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    Memory
		wantErr bool
	}{
		{name: "Sample", text: rollupSample, want: Memory{Rss: 9876 << 10, Pss: 4321 << 10, PrivateClean: 776 << 10,
			PrivateDirty: 3100 << 10, SharedClean: 6000 << 10, Anonymous: 3100 << 10}},
		{name: "ErrEmpty", text: "", wantErr: true},
		{name: "ErrNotKB", text: "Rss: 12 MB\n", wantErr: true},
		{name: "ErrNotNumber", text: "Rss: x kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRollup(strings.NewReader(tt.text))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseRollup error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseRollup = %+v, want %+v", got, tt.want)
			}
		})
	}
	if m, _ := ParseRollup(strings.NewReader(rollupSample)); m.Private() != (776+3100)<<10 {
		t.Errorf("Private = %d, want Private_Clean + Private_Dirty", m.Private())
	}
}

func TestRollup_Self(t *testing.T) {
	m, err := Rollup(os.Getpid())
	if err != nil {
		t.Skipf("no smaps_rollup here (Linux before 4.14?): %v", err)
	}
	if m.Rss <= 0 || m.Pss <= 0 || m.Pss > m.Rss || m.Private() > m.Rss {
		t.Errorf("Rollup of this process = %+v: want 0 < Pss <= Rss and Private <= Rss", m)
	}
	if _, err := Rollup(-1); err == nil {
		t.Error("Rollup of no process: no error")
	}
}
