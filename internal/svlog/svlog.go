// Package svlog reads the log directories svlogd writes: the timestamp each line starts with
// (-tt's UTC "YYYY-MM-DD_HH:MM:SS.xxxxx", -ttt's "YYYY-MM-DDTHH:MM:SS.xxxxx", -t's TAI64N
// "@4000..."), the rotated files (@TAI64N.s, @TAI64N.u) and current, the last lines across
// them, and following current across rotations.
package svlog

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Current is the file svlogd writes to; it renames it to @TAI64N.s (or .u while a processor
// runs) when it rotates.
const Current = "current"

// ErrNoLog is returned when a directory holds no svlogd log at all.
var ErrNoLog = errors.New("no svlogd log")

// Line is one log line: its timestamp when it had one, and the text after it.
type Line struct {
	Time    time.Time // zero when the line carries no svlogd timestamp
	Message string
}

// taiOffset is what runit's libtai adds to a Unix time to make a TAI64 label: 2^62 and the
// 10 s TAI was ahead of UTC in 1970 (svlogd counts no leap seconds after that).
const taiOffset = 1<<62 + 10

// ParseLine splits an svlogd line (without its newline) into timestamp and message. A line
// that does not start with a timestamp is returned whole, with a zero Time.
func ParseLine(s string) Line {
	switch {
	case len(s) >= 25 && s[0] == '@':
		// @ + 16 hex digits of TAI64 seconds + 8 of nanoseconds, then a space.
		var b [12]byte
		if _, err := hex.Decode(b[:], []byte(s[1:25])); err != nil {
			return Line{Message: s}
		}
		sec := binary.BigEndian.Uint64(b[:8])
		nsec := binary.BigEndian.Uint32(b[8:])
		if sec < taiOffset || nsec >= 1e9 {
			return Line{Message: s}
		}
		return Line{Time: time.Unix(int64(sec-taiOffset), int64(nsec)), Message: trimSpace(s[25:])}
	case len(s) >= 19 && s[4] == '-' && (s[10] == '_' || s[10] == 'T'):
		end := strings.IndexByte(s, ' ')
		if end < 0 {
			end = len(s)
		}
		stamp := s[:10] + "T" + s[11:end]
		t, err := time.Parse("2006-01-02T15:04:05.999999999", stamp)
		if err != nil {
			return Line{Message: s}
		}
		return Line{Time: t, Message: trimSpace(s[end:])}
	}
	return Line{Message: s}
}

// trimSpace drops the one space svlogd puts between the timestamp and the message.
func trimSpace(s string) string {
	return strings.TrimPrefix(s, " ")
}

// Files lists the log files of dir, oldest first: the rotated @*.s and @*.u files (their
// names are fixed-width TAI64N stamps, so they sort by time) and current last when it
// exists. It returns an error wrapping ErrNoLog when dir holds none of them.
func Files(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s: the directory does not exist", ErrNoLog, dir)
		}
		if errors.Is(err, fs.ErrPermission) {
			// rundock's log/run makes the directories 0750 root: logs can hold secrets.
			return nil, fmt.Errorf("cannot read the log directory %s: %w (run as root)", dir, err)
		}
		return nil, fmt.Errorf("cannot read the log directory %s: %w", dir, err)
	}
	var files []string
	hasCurrent := false
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == Current:
			hasCurrent = true
		case strings.HasPrefix(name, "@") && (strings.HasSuffix(name, ".s") || strings.HasSuffix(name, ".u")):
			files = append(files, name)
		}
	}
	sort.Strings(files)
	if hasCurrent {
		files = append(files, Current)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w in %s: no current or rotated @*.s file", ErrNoLog, dir)
	}
	for i, f := range files {
		files[i] = filepath.Join(dir, f)
	}
	return files, nil
}

// Position is where a Tail stopped reading current: Follow starts there, so no line written
// in between is lost or printed twice, even when svlogd rotated current meanwhile.
type Position struct {
	file   fs.FileInfo // current as Tail read it; nil when there was no current
	offset int64       // after the last complete line Tail returned
}

// Tail returns the last n lines of the log in dir, across its rotated files and current,
// oldest first, and the position in current after them; n < 0 returns every line. A last
// line without its newline yet is left out: svlogd has not finished writing it.
func Tail(dir string, n int) ([]Line, Position, error) {
	var pos Position
	files, err := Files(dir)
	if err != nil {
		return nil, pos, err
	}
	var rev []string // newest first
	for i := len(files) - 1; i >= 0; i-- {
		data, info, err := readFile(files[i])
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // rotated or removed while we listed
			}
			return nil, pos, err
		}
		j := bytes.LastIndexByte(data, '\n')
		if i == len(files)-1 && filepath.Base(files[i]) == Current {
			pos = Position{file: info, offset: int64(j + 1)}
		}
		if j < 0 || (n >= 0 && len(rev) >= n) {
			continue
		}
		split := bytes.Split(data[:j], []byte{'\n'})
		for k := len(split) - 1; k >= 0 && (n < 0 || len(rev) < n); k-- {
			rev = append(rev, string(split[k]))
		}
	}
	lines := make([]Line, len(rev))
	for i, s := range rev {
		lines[len(rev)-1-i] = ParseLine(s)
	}
	return lines, pos, nil
}

func readFile(name string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read %s: %w", name, err)
	}
	return data, info, nil
}

// Format writes l as "2006-01-02 15:04:05.000000 message" in loc; a line without a
// timestamp is its message alone.
func Format(l Line, loc *time.Location) string {
	if l.Time.IsZero() {
		return l.Message
	}
	return l.Time.In(loc).Format("2006-01-02 15:04:05.000000") + " " + l.Message
}
