//go:build !linux

package apply

import "syscall"

// announcerAttr: without Linux's parent-death signal, a killed rundock leaves the second
// announcer of an update start-first running until the next apply.
func announcerAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
