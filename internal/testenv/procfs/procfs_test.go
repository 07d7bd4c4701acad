package procfs

import (
	"os"
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
