// Command rundock-module is the rundock Ansible module for hosts with rundock installed:
// it execs bin_dir's rundock on the task's arguments file, so Ansible copies a 2 MiB
// binary for each task instead of rundock's 11 MiB (package moduleshim says more).
package main

import (
	"os"
	"syscall"

	"github.com/rundock/rundock/internal/moduleshim"
)

func main() {
	if len(os.Args) != 2 {
		os.Stderr.WriteString("usage: rundock-module ARGS_FILE (Ansible runs it as a binary module)\n")
		os.Exit(2)
	}
	exe, err := moduleshim.Target(os.Args[1])
	if err == nil {
		err = syscall.Exec(exe, []string{exe, os.Args[1]}, os.Environ())
	}
	os.Stdout.Write(moduleshim.Failed(err))
	os.Exit(1)
}
