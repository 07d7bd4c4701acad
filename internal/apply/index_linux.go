package apply

import (
	"io/fs"
	"syscall"
)

// sigOf is the statSig of fi, from Lstat or a DirEntry's Info.
func sigOf(fi fs.FileInfo) (statSig, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return statSig{}, false
	}
	return sigOfStat(st), true
}

func sigOfStat(st *syscall.Stat_t) statSig {
	return statSig{ino: st.Ino, size: uint64(st.Size), mode: st.Mode, ctime: st.Ctim.Nano()}
}

// lstatSig is the statSig of p, not following a symlink at its last element.
func lstatSig(p string) (statSig, bool) {
	var st syscall.Stat_t
	for {
		err := syscall.Lstat(p, &st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return statSig{}, false
		}
		return sigOfStat(&st), true
	}
}
