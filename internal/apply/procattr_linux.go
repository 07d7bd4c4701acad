package apply

import "syscall"

// announcerAttr makes the second announcer of an update start-first a process group of
// its own (a Ctrl-C to rundock's terminal reaches rundock, which stops it in order) that
// the kernel sends TERM when rundock dies, so a killed rundock leaves no unsupervised
// announcer behind.
func announcerAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
