package vhd

import (
	"errors"
	"fmt"
	"os"

	"github.com/vhdkit/vhd/internal/vdisk"
	"github.com/vhdkit/vhd/raw"
	"github.com/vhdkit/vhd/vhd1"
	"github.com/vhdkit/vhd/vhdx"
)

// driver is what the root package needs from a format package.
type driver struct {
	open   func(f File, path string, opts *OpenOptions) (Disk, error)
	create func(path string, opts *CreateOptions) (Disk, error)
	// createFile makes f, an empty file, a new disk.
	createFile func(f File, path string, opts *CreateOptions) (Disk, error)
	check      func(f File, path string, opts *OpenOptions) ([]Finding, error)
}

// drivers maps each supported format to its package.
var drivers = map[Format]driver{
	FormatRaw: {
		open: func(f File, path string, o *OpenOptions) (Disk, error) {
			return asDisk(raw.OpenFile(f, path, o))
		},
		create: func(path string, o *CreateOptions) (Disk, error) {
			return asDisk(raw.Create(path, o))
		},
		createFile: func(f File, path string, o *CreateOptions) (Disk, error) {
			return asDisk(raw.CreateFile(f, path, o))
		},
		check: raw.Check,
	},
	FormatVHDX: {
		open: func(f File, path string, o *OpenOptions) (Disk, error) {
			return asDisk(vhdx.OpenFile(f, path, o))
		},
		create: func(path string, o *CreateOptions) (Disk, error) {
			return asDisk(vhdx.Create(path, o))
		},
		createFile: func(f File, path string, o *CreateOptions) (Disk, error) {
			return asDisk(vhdx.CreateFile(f, path, o))
		},
		check: vhdx.Check,
	},
	FormatVHD: {
		open: func(f File, path string, o *OpenOptions) (Disk, error) {
			return asDisk(vhd1.OpenFile(f, path, o))
		},
		create: func(path string, o *CreateOptions) (Disk, error) {
			return asDisk(vhd1.Create(path, o))
		},
		createFile: func(f File, path string, o *CreateOptions) (Disk, error) {
			return asDisk(vhd1.CreateFile(f, path, o))
		},
		check: vhd1.Check,
	},
}

// asDisk turns a format package's (*Disk, error) into (Disk, error)
// without making a non-nil interface of a nil pointer.
func asDisk[D interface {
	comparable
	Disk
}](d D, err error) (Disk, error) {
	var zero D
	if err != nil || d == zero {
		return nil, err
	}
	return d, nil
}

func driverFor(f Format) (driver, error) {
	d, ok := drivers[f]
	if !ok {
		if f == FormatUnknown {
			return driver{}, ErrUnknownFormat
		}
		return driver{}, vdisk.Unsupportedf("vhd: %v disks", f)
	}
	return d, nil
}

// Open opens the disk at path, detecting its format from its content
// (see [Detect]); the file name plays no part. A nil opts opens the disk
// read-write with the default parent policy. The parents of a
// differencing disk are opened read-only.
func Open(path string, opts *OpenOptions) (Disk, error) {
	return vdisk.OpenPath(path, opts, OpenFile)
}

// OpenFile opens the disk held by f, detecting its format from its
// content. path names f: it is reported by Info and is where the parent
// of a differencing disk is looked for; it may be empty. The disk owns f
// on success and closes it on Close.
func OpenFile(f File, path string, opts *OpenOptions) (Disk, error) {
	format, err := detectFile(f, path)
	if err != nil {
		return nil, err
	}
	drv, err := driverFor(format)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return drv.open(f, path, opts)
}

func detectFile(f File, path string) (Format, error) {
	size, err := f.Size()
	if err != nil {
		return FormatUnknown, fmt.Errorf("vhd: size of %s: %w", path, err)
	}
	format, err := Detect(f, size)
	if err != nil {
		return FormatUnknown, fmt.Errorf("vhd: detect format of %s: %w", path, err)
	}
	return format, nil
}

// DetectFile detects the format of the file at path by content, like
// [Detect].
func DetectFile(path string) (Format, error) {
	f, err := vdisk.OpenOSFile(path, true)
	if err != nil {
		return FormatUnknown, err
	}
	defer f.Close()
	return detectFile(f, path)
}

// Check checks the disk at path against its format's rules
// (FORMATS.md 5), detecting the format by content. Every rule the file
// breaks is a [Finding] with the file offset of the structure; the error
// is reserved for a check that cannot run (the file cannot be read, or
// the format is not supported). The file is opened read-only and never
// written. Check does not follow parents.
func Check(path string, opts *OpenOptions) ([]Finding, error) {
	f, err := opts.Open(path, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return CheckFile(f, path, opts)
}

// CheckFile is [Check] on an open file; it does not close f.
func CheckFile(f File, path string, opts *OpenOptions) ([]Finding, error) {
	format, err := detectFile(f, path)
	if err != nil {
		return nil, err
	}
	drv, err := driverFor(format)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", path, err)
	}
	ro := OpenOptions{ReadOnly: true}
	if opts != nil {
		ro = *opts
		ro.ReadOnly = true
	}
	return drv.check(readOnlyFile{f}, path, &ro)
}

// readOnlyFile refuses every write, so that a checker cannot change the
// file it checks.
type readOnlyFile struct{ File }

func (readOnlyFile) WriteAt([]byte, int64) (int, error) { return 0, ErrReadOnly }
func (readOnlyFile) Truncate(int64) error               { return ErrReadOnly }
func (readOnlyFile) Close() error                       { return nil }

// errExist reports whether err says a file exists.
func errExist(err error) bool { return errors.Is(err, os.ErrExist) }
