package vhd

import (
	"io"

	"github.com/vhdkit/vhd/internal/vdisk"
)

// Disk is an open virtual disk of any format. [Open] and [Create] return
// one; the format packages' *Disk types implement it.
//
// A Disk is safe for concurrent ReadAt calls from many goroutines, and
// WriteAt may run alongside them.
type Disk interface {
	// ReadAt reads len(p) bytes of virtual content at off. Any offset and
	// length within Size are allowed; reading past the end returns
	// io.EOF with the bytes read before it, as a file does.
	io.ReaderAt

	// WriteAt writes len(p) bytes of virtual content at off. Writing
	// past Size returns an error wrapping [ErrOutOfRange]; writing to a
	// disk opened read-only returns [ErrReadOnly]. Sparse formats
	// allocate blocks as needed.
	io.WriterAt

	// Size returns the virtual size in bytes.
	Size() int64

	// Sync makes every completed write durable, including the
	// format's metadata.
	Sync() error

	// Close syncs a read-write disk and closes its file and any parent
	// disks. Use after Close returns [ErrClosed].
	Close() error

	// Map describes [off, off+length) as a list of extents covering
	// exactly that range, in order, with adjacent runs of equal state
	// and depth merged. For a differencing disk it describes the merged
	// chain; an extent's Depth says which file of the chain holds it.
	// Use it to skip ranges that read as zeros when copying.
	Map(off, length int64) ([]Extent, error)

	// Info describes the disk and, for a differencing disk, its
	// parents.
	Info() Info
}

// The disk of every format package satisfies Disk.
var _ Disk = vdisk.Image(nil)

// Format is a container format: [FormatRaw], [FormatVHD] or
// [FormatVHDX].
type Format = vdisk.Format

// Formats.
const (
	FormatUnknown = vdisk.FormatUnknown // not recognised
	FormatRaw     = vdisk.FormatRaw     // a plain image, byte for byte
	FormatVHD     = vdisk.FormatVHD     // VHD version 1
	FormatVHDX    = vdisk.FormatVHDX    // VHDX
)

// ParseFormat parses a format name: "raw" (or "img"), "vhd" (or "vpc"),
// "vhdx".
func ParseFormat(s string) (Format, error) { return vdisk.ParseFormat(s) }

// Type is the allocation type of a disk.
type Type = vdisk.Type

// Disk types.
const (
	TypeUnknown      = vdisk.TypeUnknown      // not known
	TypeFixed        = vdisk.TypeFixed        // fully allocated
	TypeDynamic      = vdisk.TypeDynamic      // blocks allocated on write
	TypeDifferencing = vdisk.TypeDifferencing // unallocated reads go to a parent
)

// ParseType parses a disk type name: "fixed", "dynamic", "differencing".
func ParseType(s string) (Type, error) { return vdisk.ParseType(s) }

// Extent is a run of the virtual disk with one [ExtentState]. Its
// fields (the type is defined in an internal package, so go doc does not
// list them here):
//
//	Offset, Length int64 // virtual range
//	State      ExtentState
//	FileOffset int64 // where the bytes start in the file holding them; -1 if none or not open
//	Depth      int   // 0 the disk itself, 1 its parent, ...
type Extent = vdisk.Extent

// ExtentState says what a range of the virtual disk holds.
type ExtentState = vdisk.ExtentState

// Extent states.
const (
	// Unallocated ranges are stored in no file of the chain and read as
	// zeros.
	Unallocated = vdisk.Unallocated
	// Zero ranges are recorded as zeros and read as zeros.
	Zero = vdisk.Zero
	// Data ranges are stored in a file of the chain.
	Data = vdisk.Data
)

// Info describes an open disk. Its fields (the type is defined in an
// internal package, so go doc does not list them here):
//
//	Path               string
//	Format             Format
//	Type               Type
//	VirtualSize        int64
//	FileSize           int64
//	BlockSize          uint32 // 0 for raw
//	LogicalSectorSize  uint32
//	PhysicalSectorSize uint32
//	AllocatedBytes     int64  // payload held by this file, not its parents
//	ID                 string // VHDX Virtual Disk ID, VHD Unique Id; "" for raw
//	ReadOnly           bool   // opened read-only
//	Details            Fields // the format's own fields (GUIDs, log state...)
//	Parent             *Info  // the parent of a differencing disk
type Info = vdisk.Info

// Field is one format-specific item of [Info.Details].
type Field = vdisk.Field

// Fields is an ordered list of [Field]s that marshals to a JSON object.
type Fields = vdisk.Fields

// Finding is one result of [Check].
type Finding = vdisk.Finding

// Severity grades a [Finding].
type Severity = vdisk.Severity

// Severities.
const (
	SeverityInfo    = vdisk.SeverityInfo    // a fact worth reporting
	SeverityWarning = vdisk.SeverityWarning // legal but unusual or risky
	SeverityError   = vdisk.SeverityError   // the file breaks a rule
)

// OpenOptions control how [Open] opens a disk and its parents. Its
// fields (the type is defined in an internal package, so go doc does not
// list them here):
//
//	ReadOnly bool         // never write the file (a dirty VHDX log is replayed in memory)
//	Parent   ParentPolicy // where parents may be looked for
//	OpenFile func(path string, readOnly bool) (File, error) // nil: the OS
type OpenOptions = vdisk.OpenOptions

// CreateOptions describe a new disk for [Create]. Its fields (the type
// is defined in an internal package, so go doc does not list them here):
//
//	Type               Type   // dynamic (default), fixed or differencing
//	Size               int64  // virtual size; a differencing disk takes its parent's
//	BlockSize          uint32 // VHDX default 32 MiB, VHD 2 MiB
//	LogicalSectorSize  uint32 // 512 or 4096 (VHDX); VHD only 512
//	PhysicalSectorSize uint32 // 512 or 4096
//	Parent             string // the parent's path; makes a differencing disk
//	ID                 guid.GUID // zero: random (a VHDX child: its parent's)
type CreateOptions = vdisk.CreateOptions

// ParentPolicy says where a differencing disk may look for its parent.
// Its fields (the type is defined in an internal package, so go doc does
// not list them here):
//
//	AllowAbsolute bool   // also try the absolute paths the child records
//	Path          string // use this parent (its identity is still checked)
//	Skip          bool   // open a child alone, read-only (for Info, Map); the parent's ranges map as Data, FileOffset -1, and fail to read
type ParentPolicy = vdisk.ParentPolicy

// File is the storage behind a disk, for [OpenFile]; [OSFile] adapts an
// [*os.File].
type File = vdisk.File

// OSFile adapts an [*os.File] to [File].
type OSFile = vdisk.OSFile

// CorruptError describes a structure that breaks its format's rules and
// where it is; it matches [ErrCorrupt].
type CorruptError = vdisk.CorruptError

// Error values. They are the same values the format packages return, so
// [errors.Is] works on any error from this module.
var (
	// ErrCorrupt reports a structure that violates its format's rules.
	ErrCorrupt = vdisk.ErrCorrupt
	// ErrReadOnly reports a write to a disk opened read-only.
	ErrReadOnly = vdisk.ErrReadOnly
	// ErrParentNotFound reports a differencing disk whose parent could
	// not be found.
	ErrParentNotFound = vdisk.ErrParentNotFound
	// ErrParentMismatch reports a parent whose identity does not match
	// the child's record of it.
	ErrParentMismatch = vdisk.ErrParentMismatch
	// ErrOutOfRange reports an access beyond the virtual size.
	ErrOutOfRange = vdisk.ErrOutOfRange
	// ErrInvalidArgument reports an option outside the format's limits.
	ErrInvalidArgument = vdisk.ErrInvalidArgument
	// ErrClosed reports use of a disk after Close.
	ErrClosed = vdisk.ErrClosed
	// ErrUnknownFormat reports content no format recognises where one
	// was required.
	ErrUnknownFormat = vdisk.ErrUnknownFormat
)
