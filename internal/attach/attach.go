package attach

import (
	"io"
	"os"
)

// ServeEnv is the environment variable that makes a re-executed program
// serve a disk: its value is the state directory.
const ServeEnv = "VHDKIT_ATTACH_SERVE"

// RunDir is the directory holding one state directory per attached disk.
// The environment variable VHD_RUN_DIR overrides it.
var RunDir = "/run/vhd"

func runDir() string {
	if d := os.Getenv("VHD_RUN_DIR"); d != "" {
		return d
	}
	return RunDir
}

// Request describes an attach.
type Request struct {
	// Path is the disk's file.
	Path string
	// ReadOnly makes the device read-only (and, for served disks, opens
	// the disk read-only).
	ReadOnly bool
	// Direct puts the loop device on Path itself: for raw images and
	// fixed VHDs, whose raw content starts at byte 0 of the file.
	Direct bool
	// Size is the virtual size; for a direct attach it limits the loop
	// device so that trailing metadata (a VHD footer) stays hidden.
	Size int64
	// Offset and Length restrict the device to a range of the raw view
	// (Length 0: to the end). Both must be multiples of 512.
	Offset, Length int64
}

// Image is a disk opened by the server: its raw view, durability and
// Close, which syncs.
type Image interface {
	io.ReaderAt
	io.WriterAt
	Size() int64
	Sync() error
	Close() error
}

// Opener opens the disk at path for the server.
type Opener func(path string, readOnly bool) (Image, error)

// State is what state.json records about an attached disk.
type State struct {
	Path     string `json:"path"`
	Device   string `json:"device,omitempty"`
	ReadOnly bool   `json:"read_only"`
	// Served is true when a server process exposes the disk through
	// FUSE; false for a loop device directly on the file.
	Served bool `json:"served"`
	// Mountpoint is where the server's FUSE file system is mounted.
	Mountpoint string `json:"mountpoint,omitempty"`
	PID        int    `json:"pid,omitempty"`
	Offset     int64  `json:"offset,omitempty"`
	Length     int64  `json:"length,omitempty"`
	// Dir is the state directory (not stored).
	Dir string `json:"-"`
}
