package raw

import (
	"errors"
	"syscall"

	"github.com/vhdkit/vhd/internal/vdisk"
	"golang.org/x/sys/unix"
)

// mapHoles finds data and holes in [start, end) with lseek SEEK_DATA and
// SEEK_HOLE. It returns nil, nil when f has no file descriptor or its
// file system cannot tell (the caller then reports all data).
func mapHoles(f vdisk.File, start, end int64) ([]vdisk.Extent, error) {
	sc, ok := f.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return nil, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, nil
	}
	var ext []vdisk.Extent
	var serr error
	unsupported := false
	cerr := rc.Control(func(fd uintptr) {
		ext, serr = seekExtents(int(fd), start, end)
		if errors.Is(serr, unix.EINVAL) || errors.Is(serr, unix.EOPNOTSUPP) {
			unsupported, serr = true, nil
		}
	})
	if cerr != nil || unsupported {
		return nil, nil
	}
	return ext, serr
}

// seekExtents walks [start, end) alternating SEEK_DATA and SEEK_HOLE.
// Seeking moves the descriptor's offset, which ReadAt and WriteAt
// (pread, pwrite) do not use.
func seekExtents(fd int, start, end int64) ([]vdisk.Extent, error) {
	var ext []vdisk.Extent
	pos := start
	for pos < end {
		data, err := unix.Seek(fd, pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			// No data at or after pos.
			data = end
		} else if err != nil {
			return nil, err
		}
		data = min(data, end)
		if data > pos {
			ext = append(ext, holeExtent(pos, data))
		}
		if data >= end {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if errors.Is(err, unix.ENXIO) {
			hole = end
		} else if err != nil {
			return nil, err
		}
		hole = min(hole, end)
		if hole <= data {
			// Should not happen; do not loop forever on it.
			hole = end
		}
		ext = append(ext, dataExtent(data, hole))
		pos = hole
	}
	return ext, nil
}
