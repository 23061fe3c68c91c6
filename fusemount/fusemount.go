package fusemount

import (
	"io"
	"log/slog"
)

// Image is the disk served: its raw content, size and durability.
type Image interface {
	io.ReaderAt
	io.WriterAt
	Size() int64
	Sync() error
}

// Options configure [Mount].
type Options struct {
	// ReadOnly mounts read-only and refuses writes with EROFS.
	ReadOnly bool
	// Name is the file's name; empty means "disk".
	Name string
	// FsName is shown as the source in /proc/mounts; empty means
	// "vhd".
	FsName string
	// Logger receives the FUSE server's debug output when Debug is
	// set; nil discards it.
	Logger *slog.Logger
	// Debug logs every FUSE request.
	Debug bool
}
