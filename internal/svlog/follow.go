package svlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DefaultPoll is how often Follow looks for new lines and for a rotation when it has none.
// svlogd gives no notification; 200 ms is below what a person notices and costs nothing.
const DefaultPoll = 200 * time.Millisecond

// Follow calls emit with every complete line svlogd appends to dir/current from pos (as
// Tail returned it; the zero Position starts at the beginning of the next current), and
// keeps following across rotations: when svlogd renames current to @TAI64N.s and starts a
// new one, Follow reads the renamed file to its end, then the new current from its start.
// It returns nil when ctx is done, or the first error of emit or of reading.
func Follow(ctx context.Context, dir string, pos Position, poll time.Duration, emit func(Line) error) error {
	if poll <= 0 {
		poll = DefaultPoll
	}
	cur := filepath.Join(dir, Current)
	r := &reader{emit: emit}
	if err := r.openAt(dir, pos); err != nil {
		return err
	}
	defer r.close()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		if err := r.drain(); err != nil {
			return err
		}
		info, err := os.Stat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Between svlogd's rename and its new current: keep the old file, wait.
		case err != nil:
			return fmt.Errorf("cannot follow %s: %w", cur, err)
		case r.f == nil || !os.SameFile(info, r.info):
			// Rotated (or first appearance): finish the old file, then start the new one.
			if err := r.drain(); err != nil {
				return err
			}
			if err := r.flush(); err != nil {
				return err
			}
			r.close()
			if err := r.open(cur, 0); err != nil {
				return err
			}
			continue
		case info.Size() < r.off:
			// Truncated by hand: start again at the beginning.
			r.off, r.partial = 0, nil
			if _, err := r.f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("cannot follow %s: %w", cur, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// reader holds the file Follow reads and the incomplete line at its end.
type reader struct {
	f       *os.File
	info    fs.FileInfo
	off     int64
	partial []byte
	buf     [32 << 10]byte
	emit    func(Line) error
}

// openAt opens the file pos points into: current if it is still the same file, else the
// rotated file it was renamed to; with neither, Follow waits for a new current.
func (r *reader) openAt(dir string, pos Position) error {
	if pos.file == nil {
		return nil
	}
	files, err := Files(dir)
	if err != nil && !errors.Is(err, ErrNoLog) {
		return err
	}
	for i := len(files) - 1; i >= 0; i-- {
		info, err := os.Stat(files[i])
		if err == nil && os.SameFile(info, pos.file) {
			return r.open(files[i], pos.offset)
		}
	}
	return nil
}

func (r *reader) open(name string, off int64) error {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // renamed again under us; the loop finds the next current
	}
	if err != nil {
		return fmt.Errorf("cannot follow %s: %w", name, err)
	}
	info, err := f.Stat()
	if err == nil {
		_, err = f.Seek(off, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("cannot follow %s: %w", name, err)
	}
	r.f, r.info, r.off, r.partial = f, info, off, nil
	return nil
}

// drain reads to the end of the file and emits every complete line.
func (r *reader) drain() error {
	if r.f == nil {
		return nil
	}
	for {
		n, err := r.f.Read(r.buf[:])
		r.off += int64(n)
		data := append(r.partial, r.buf[:n]...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			if err := r.emit(ParseLine(string(data[:i]))); err != nil {
				return err
			}
			data = data[i+1:]
		}
		r.partial = append([]byte(nil), data...)
		if err == io.EOF || n == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot follow %s: %w", r.f.Name(), err)
		}
	}
}

// flush emits the incomplete last line of a file that will not grow any more.
func (r *reader) flush() error {
	if len(r.partial) == 0 {
		return nil
	}
	l := ParseLine(string(r.partial))
	r.partial = nil
	return r.emit(l)
}

func (r *reader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}
