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

// OpenPath opens the file at path (through opts.OpenFile when set,
// read-only when opts.ReadOnly) and hands it to openFile, a format's
// OpenFile. On failure the file is closed.
func OpenPath[D any](path string, opts *OpenOptions,
	openFile func(File, string, *OpenOptions) (D, error)) (D, error) {
	f, err := opts.Open(path, opts != nil && opts.ReadOnly)
	if err != nil {
		var zero D
		return zero, err
	}
	d, err := openFile(f, path, opts)
	if err != nil {
		f.Close()
	}
	return d, err
}

// CreatePath creates the file at path (failing if it exists) and hands
// it to createFile, a format's CreateFile. On failure the file is
// closed and removed, so nothing is left at path.
func CreatePath[D any](path string, opts *CreateOptions,
	createFile func(File, string, *CreateOptions) (D, error)) (D, error) {
	f, err := CreateOSFile(path)
	if err != nil {
		var zero D
		return zero, err
	}
	d, err := createFile(f, path, opts)
	if err != nil {
		f.Close()
		os.Remove(path)
	}
	return d, err
}
