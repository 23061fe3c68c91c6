package vdisk

import (
	"io"
	"os"
)

// File is the storage behind an image: a random-access file that can be
// synced, resized and measured. [*os.File] satisfies it through [OSFile];
// tests use in-memory files that can simulate crashes and faults.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes every completed write durable.
	Sync() error
	// Truncate sets the file size.
	Truncate(size int64) error
	// Size returns the current file size.
	Size() (int64, error)
	// Close releases the file.
	Close() error
}

// OSFile adapts an [*os.File] to [File].
type OSFile struct{ *os.File }

// Size returns the file size from Stat.
func (f OSFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// OpenOSFile opens path for reading, or reading and writing.
func OpenOSFile(path string, readOnly bool) (File, error) {
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	return OSFile{f}, nil
}

// CreateOSFile creates path, failing if it exists.
func CreateOSFile(path string) (File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return OSFile{f}, nil
}
